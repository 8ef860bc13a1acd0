"""`mis-eval sweep`: plans, job failures, resume, locally and on a real (local) Ray cluster.

The end-to-end tests run lmms-eval for real (the demo model and a tiny random-weight Qwen2-VL, two
records per MIS split); one job of each sweep crashes (its checkpoint does not exist yet) and the
re-run after the checkpoint appears runs that job alone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mis_eval.cli import main
from mis_eval.commands.demo import demo_data_root
from mis_eval.processes import dying_with_parent
from mis_eval.records import find_runs
from mis_eval.sweep.plan import PlanError, load_plan
from mis_eval.sweep.runner import FAILED, INCOMPLETE, OK, Phase, classify, run_phase
from mis_eval.sweep.state import SweepLock
from tests.adapters_support import tiny_models_fixture

tiny_models = tiny_models_fixture()
PAPER_PLAN = Path(__file__).parents[1] / "mis_eval" / "sweep" / "paper_plan.yaml"


def plan_file(tmp_path: Path, models: list[dict[str, Any]], **top: Any) -> Path:
    plan = {
        "output": str(tmp_path / "out"),
        "judges": ["keyword"],
        "env": {"MIS_DATA_ROOT": str(demo_data_root())},
        "benchmarks": {"mis": ["mis"]},
        "models": models,
        "limits": {"limit": 2},
        **top,
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return path


def tiny_model(model_id: str, checkpoint: Path, gpus: int = 0) -> dict[str, Any]:
    return {
        "id": model_id,
        "model": "mis_qwen2_vl",
        "model_args": {"pretrained": str(checkpoint), "backend": "hf"},
        "batch_size": 2,
        "gen_kwargs": {"max_new_tokens": 4},
        "gpus": gpus,
    }


def state(out: Path) -> dict[str, Any]:
    return json.loads((out / "sweep_state.json").read_text(encoding="utf-8"))


def headers(log: Path) -> int:
    """How many times a phase ran: each run starts its log section with a header."""
    return log.read_text(encoding="utf-8").count("\n===== ")


# -- the plan ---------------------------------------------------------------------------------

GOOD_MODEL = {"id": "demo", "model": "mis_demo", "gpus": 0}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"modles": []}, "unknown key(s) 'modles'"),
        ({"models": [{**GOOD_MODEL, "gpus": -1}]}, "models[0].gpus: expected a whole number >= 0"),
        ({"models": [{**GOOD_MODEL, "gpus": "2"}]}, "models[0].gpus"),
        ({"models": [GOOD_MODEL, GOOD_MODEL]}, "models[1].id: 'demo' is already the id of models[0]"),
        ({"models": [{**GOOD_MODEL, "model": "mis_qwen"}]}, "models[0].model: unknown lmms-eval model"),
        ({"models": [{**GOOD_MODEL, "benchmarks": ["nope"]}]}, "models[0].benchmarks[0]: no benchmark group"),
        ({"models": [{**GOOD_MODEL, "model_args": {"api_key": "sk-x"}}]}, "models[0].model_args.api_key"),
        # masked in run records (mis_eval/core/secrets.py), so such a job could never be found done
        ({"models": [{**GOOD_MODEL, "model_args": {"sig": "abcdefgh"}}]}, "models[0].model_args.sig"),
        ({"models": [{**GOOD_MODEL, "model_args": {"pwd": "abcdefgh"}}]}, "models[0].model_args.pwd"),
        (
            {"models": [{**GOOD_MODEL, "model_args": {"base_url": "http://user:hunter22@h/v1"}}]},
            "models[0].model_args.base_url: credentials in a URL",
        ),
        ({"models": [{**GOOD_MODEL, "model_args": {"cache": "x.jsonl"}}]}, "models[0].model_args.cache"),
        ({"models": [{**GOOD_MODEL, "model_args": "batch_size=4"}]}, "models[0].model_args.batch_size"),
        ({"models": [{**GOOD_MODEL, "lmms_eval_args": ["--limit=3"]}]}, "models[0].lmms_eval_args"),
        (
            {
                "models": [
                    {**GOOD_MODEL, "model_args": "pretrained=a"},
                    {**GOOD_MODEL, "id": "b", "model_args": "pretrained=a"},
                ]
            },
            "models[1].model_args: run records would name it 'a'",
        ),
        ({"judges": ["gpt5"]}, "judges[0]: unknown judge 'gpt5'"),
        ({"judges": ["local:base_url=http://h/v1,token=abc"]}, "judges[0].token"),
        ({"env": {"OPENAI_API_KEY": "sk-x"}}, "env.OPENAI_API_KEY"),
        ({"limits": {"limit": 0}}, "limits.limit"),
        ({"limits": {"timeout": 5}}, "limits: unknown key(s) 'timeout'"),
        ({"benchmarks": {"mis": []}}, "benchmarks.mis: expected a name or a non-empty list"),
    ],
)
def test_bad_plan_exits_2_naming_the_file_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], where: str
) -> None:
    path = plan_file(tmp_path, [GOOD_MODEL])
    plan = {**yaml.safe_load(path.read_text()), **change}
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: " in err and where in err, err
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("output: a\noutput: b\njudges: [keyword]\nbenchmarks: {mis: [mis]}\nmodels: []\n")
    with pytest.raises(PlanError, match=r"(?s)plan\.yaml: not valid YAML .*duplicate key 'output'"):
        load_plan(path)


def test_plan_reads_the_documented_forms(tmp_path: Path) -> None:
    path = plan_file(
        tmp_path,
        [
            {**GOOD_MODEL, "benchmarks": "mis"},
            {
                "id": "q",
                "model": "mis_qwen2_vl",
                "model_args": 'pretrained=/m/q,processor_kwargs={"a":1,"b":2},backend=hf',
                "gpus": 2,
                "batch_size": "auto",
                "gen_kwargs": {"max_new_tokens": 16, "do_sample": False},
            },
        ],
        judges=["keyword", {"name": "local", "options": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}],
    )
    plan = load_plan(path)
    q = plan.models[1]
    assert (
        q.args_text(Path("/c.jsonl"))
        == 'pretrained=/m/q,processor_kwargs={"a":1,"b":2},backend=hf,cache=/c.jsonl'
    )
    assert q.recorded_name() == "/m/q" and plan.models[0].recorded_name() == "mis_demo"
    assert q.gen_kwargs == (("max_new_tokens", "16"), ("do_sample", "false"))
    assert plan.judges == ("keyword", "local:base_url=http://127.0.0.1:9/v1,model=m")
    assert plan.groups_of(plan.models[0]) == ("mis",) and plan.limits.limit == 2


# -- one job's process: how it ends, in words -----------------------------------------------


def _phase(tmp_path: Path, code: str, timeout: float | None = None, name: str = "generate") -> Phase:
    return Phase(
        "m/g", name, [sys.executable, "-c", code], str(tmp_path / "job.log"), str(tmp_path), {}, timeout
    )


def test_phase_outcomes_name_the_reason(tmp_path: Path) -> None:
    killed = run_phase(
        _phase(tmp_path, "import os, signal; print('loading'); os.kill(os.getpid(), signal.SIGKILL)")
    )
    assert killed.status == FAILED and killed.returncode == -9
    assert killed.reason and "SIGKILL" in killed.reason and "out of memory" in killed.reason
    cuda = run_phase(
        _phase(
            tmp_path,
            "import sys; print('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB')\n"
            "sys.exit(1)",
        )
    )
    assert cuda.status == FAILED and cuda.reason == (
        "out of memory: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB"
    )
    crash = run_phase(_phase(tmp_path, "raise ValueError('model arg x is not valid')"))
    assert crash.reason == "crashed (exit status 1): ValueError: model arg x is not valid"
    ok = run_phase(_phase(tmp_path, "print('fine')"))
    assert ok.status == OK and ok.reason is None
    log = (tmp_path / "job.log").read_text()
    assert log.count("===== m/g generate") == 4 and "CUDA_VISIBLE_DEVICES=" in log and "fine" in log
    # what `mis-eval run` says when its lmms-eval was OOM-killed; a judge step with unusable verdicts
    assert classify("generate", 1, "lmms-eval exited with status -9") == (
        FAILED,
        "lmms-eval was killed by SIGKILL "
        "(out of memory: the kernel's OOM killer or a memory monitor, or kill -9)",
    )
    status, reason = classify(
        "judge", 3, "mis-eval judge: m/mis_hard__x: INCOMPLETE: 3 of 6 verdicts unusable"
    )
    assert status == INCOMPLETE and reason and "3 of 6 verdicts unusable" in reason


def test_a_timed_out_job_is_stopped_with_everything_it_started(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '120'])\n"
        "open(sys.argv[1], 'w').write(str(child.pid))\n"
        "time.sleep(120)\n"
    )
    pid_file = tmp_path / "child.pid"
    phase = _phase(tmp_path, code, timeout=5)
    phase.argv.append(str(pid_file))
    out = run_phase(phase)
    assert out.status == FAILED and out.reason == "timed out after 5 s (limits.timeout_s)"
    assert not _alive(int(pid_file.read_text()))


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting for its reaper does not)."""
    for _ in range(100):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return False
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        time.sleep(0.1)
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path: Path) -> None:
    """What keeps lmms-eval from holding a GPU after its `mis-eval run` (or Ray worker) was killed -9."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "from mis_eval.processes import dying_with_parent\n"
            "child = subprocess.Popen(dying_with_parent(['sleep', '120']))\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive_now(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert not _alive(child)
    assert dying_with_parent(["x"])[-1] == "x"


def _alive_now(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_response_cache_is_given_to_the_adapters_that_take_it() -> None:
    import importlib
    import inspect

    from model_adapters.registry import models, takes_response_cache

    for model_id, (path, aliases) in models().items():
        module, _, name = path.rpartition(".")
        takes = "cache" in inspect.signature(getattr(importlib.import_module(module), name)).parameters
        assert all(takes_response_cache(n) == takes for n in (model_id, *aliases)), model_id
    assert not takes_response_cache("mis_demo") and takes_response_cache("mis_internvl")
    assert not takes_response_cache("llava_onevision")  # lmms-eval's own models: never given cache=


def test_without_ray_flag_nothing_imports_ray(tmp_path: Path) -> None:
    path = plan_file(tmp_path, [GOOD_MODEL])
    code = (
        "import sys\nfrom mis_eval.cli import main\n"
        f"assert main(['sweep', {str(path)!r}, '--dry-run']) == 0\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "demo/mis" in proc.stdout and "nothing recorded yet" in proc.stdout


def test_one_sweep_per_output_folder(tmp_path: Path) -> None:
    with (
        SweepLock(tmp_path / ".sweep.lock"),
        pytest.raises(ValueError, match="another mis-eval sweep is running"),
    ):
        SweepLock(tmp_path / ".sweep.lock").__enter__()
    with SweepLock(tmp_path / ".sweep.lock"):  # released when the first one ended
        pass


# -- the paper's plan -------------------------------------------------------------------------


@pytest.mark.slow
def test_paper_plan_dry_run_lists_every_job_and_the_judge_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIS_DATA_ROOT", str(demo_data_root()))  # the MIS splits are counted from it
    out = tmp_path / "paper"
    assert main(["sweep", str(PAPER_PLAN), "--dry-run", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    plan = load_plan(PAPER_PLAN)
    assert len(plan.models) == 7 and list(plan.benchmarks) == [
        "mis",
        "mm_safetybench",
        "siuo",
        "vlguard",
        "capability",
    ]
    rows = [line for line in text.splitlines() if "nothing recorded yet" in line]
    assert len(rows) == 35
    assert all(f"{m.id}/{g}" in text for m in plan.models for g in plan.benchmarks)
    # 7 models x (8 + 8 + 4 demo MIS records + 1,680 MM-SafetyBench TYPO questions, bundled); the rest unknown
    assert "mis_hard: 8 records" in text and "mm_safetybench_typo: 1680 records" in text
    assert "gpt4o: 11,900 calls" in text and "at $2.5 / $10 per 1M tokens" in text
    assert "not counted, data not on this machine:" in text and "siuo_gen" in text
    assert "judge 'gpt4o' needs an API key" in text  # described from its options, not built
    assert not out.exists()  # a dry run writes nothing


@pytest.mark.slow
def test_unknown_task_fails_the_plan_before_any_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = plan_file(tmp_path, [GOOD_MODEL], benchmarks={"mis": ["mis"], "cap": ["mis_capability", "mmstr"]})
    assert main(["sweep", str(path)]) == 2
    assert f"{path}: benchmarks.cap[1]: no lmms-eval task or group 'mmstr'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- whole sweeps -----------------------------------------------------------------------------


@pytest.mark.slow
def test_local_sweep_survives_a_crashed_job_and_resumes_only_it(
    tmp_path: Path, tiny_models: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    later = tmp_path / "later" / "qwen2_vl"  # the checkpoint the crashing job names, made before the re-run
    path = plan_file(tmp_path, [GOOD_MODEL, tiny_model("tiny", later)])
    out = tmp_path / "out"
    assert main(["sweep", str(path)]) == 1
    printed = capsys.readouterr().out
    jobs = state(out)["jobs"]
    assert jobs["demo/mis"]["status"] == "done"
    assert jobs["tiny/mis"]["status"] == "failed" and "crashed (exit status 1)" in jobs["tiny/mis"]["reason"]
    assert str(later) in jobs["tiny/mis"]["reason"] and Path(jobs["tiny/mis"]["log"]).is_file()
    assert jobs["tiny/mis"]["log"] in printed
    board = (out / "leaderboard" / "leaderboard.md").read_text()
    assert "| demo |" in board and "| tiny |" not in board
    demo_records = sorted(str(p) for p, _ in find_runs([out / "results"]))
    assert len(demo_records) == 3  # mis_easy, mis_hard, mis_real of the demo model

    assert main(["sweep", str(path), "--dry-run"]) == 0
    table = capsys.readouterr().out
    assert "demo/mis" in table and "3 task(s) recorded" in table
    tiny_row = next(line for line in table.splitlines() if line.startswith("tiny/mis"))
    assert "to run" in tiny_row and "failed last time: crashed" in tiny_row

    shutil.copytree(tiny_models("qwen2_vl"), later)
    assert main(["sweep", str(path)]) == 0
    jobs = state(out)["jobs"]
    assert jobs["tiny/mis"]["status"] == "done"
    assert headers(out / "logs" / "demo__mis.generate.log") == 1  # the finished job did not run again
    assert headers(out / "logs" / "tiny__mis.generate.log") == 2
    runs = find_runs([out / "results"])
    assert sorted(str(p) for p, r in runs if r.model.adapter == "mis_demo") == demo_records
    tiny = [r for _, r in runs if r.model.adapter == "mis_qwen2_vl"]
    assert {r.task.name for r in tiny} == {"mis_easy", "mis_hard", "mis_real"}
    assert all(r.task.data.limit == 2 and r.complete for r in tiny)
    cache = out / "cache" / "tiny__mis.jsonl"  # the adapter's response cache, one per job
    assert all(f"cache={cache}" in r.model.args for r in tiny) and cache.read_text().strip()  # answers kept
    board = (out / "leaderboard" / "leaderboard.md").read_text()
    assert "| demo |" in board and "| tiny |" in board


@pytest.mark.slow
def test_a_judge_outage_is_judged_again_without_generating_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mis_eval.testing.fake_openai import FakeOpenAIServer

    down = {"now": True}
    with FakeOpenAIServer(faults=lambda body, i: "500" if down["now"] else None) as server:
        judge = f"local:base_url={server.base_url},model=judge-model,max_retries=0"
        path = plan_file(tmp_path, [GOOD_MODEL], judges=[judge], benchmarks={"hard": ["mis_hard"]})
        out = tmp_path / "out"
        assert main(["sweep", str(path)]) == 3  # judged, but every verdict is a judge error
        job = state(out)["jobs"]["demo/hard"]
        assert job["status"] == "incomplete" and "verdicts unusable" in job["reason"]
        capsys.readouterr()
        assert main(["sweep", str(path), "--dry-run"]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("demo/hard"))
        assert "to judge" in row and "generated, judging left" in row and "is incomplete" in row
        down["now"] = False
        assert main(["sweep", str(path)]) == 0
    assert state(out)["jobs"]["demo/hard"]["status"] == "done"
    assert headers(out / "logs" / "demo__hard.generate.log") == 1
    assert headers(out / "logs" / "demo__hard.judge.log") == 2
    newest = max((r for _, r in find_runs([out / "results"])), key=lambda r: r.finished_at)
    assert newest.complete and newest.judge.id == "local:judge-model" and newest.counts.ok == 2


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A Ray cluster on this machine with two logical GPUs; its address, for a sweep to join."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")  # a busy CI machine starts slowly
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


def _interval(entry: dict[str, Any]) -> tuple[float, float]:
    start = float(entry["generate"]["started_unix"])
    return start, start + float(entry["generate"]["seconds"])


@pytest.mark.slow
def test_ray_sweep_places_jobs_on_gpus_survives_a_crash_and_resumes(
    tmp_path: Path, tiny_models: Any, ray_cluster: str
) -> None:
    later = tmp_path / "later" / "qwen2_vl"
    models = [
        {**GOOD_MODEL, "gpus": 1},
        tiny_model("tiny", tiny_models("qwen2_vl"), gpus=1),
        tiny_model("late", later, gpus=1),
        {"id": "huge", "model": "mis_demo", "model_args": {"model": "huge"}, "gpus": 3},
    ]
    path = plan_file(tmp_path, models)
    out = tmp_path / "out"
    sweep = [sys.executable, "-m", "mis_eval.cli", "sweep", str(path), "--ray", ray_cluster]
    first = subprocess.run(sweep, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    jobs = state(out)["jobs"]
    assert {j: e["status"] for j, e in jobs.items()} == {
        "demo/mis": "done",
        "tiny/mis": "done",
        "late/mis": "failed",
        "huge/mis": "failed",
    }
    assert jobs["huge/mis"]["reason"] == "needs 3 GPU(s); the Ray cluster has 2"
    assert "crashed (exit status 1)" in jobs["late/mis"]["reason"]
    ran = {j: e for j, e in jobs.items() if "generate" in e}
    for job, entry in ran.items():  # each job saw the one GPU Ray gave it, and ran on it
        devices = entry["generate"]["cuda_visible_devices"]
        assert devices in ("0", "1"), (job, devices)
        assert f"CUDA_VISIBLE_DEVICES={devices}\n" in Path(entry["generate"]["log"]).read_text()
    for a in ran:
        for b in ran:
            (a0, a1), (b0, b1) = _interval(ran[a]), _interval(ran[b])
            if a < b and a0 < b1 and b0 < a1:  # ran at the same time: never on the same GPU
                assert (
                    ran[a]["generate"]["cuda_visible_devices"] != ran[b]["generate"]["cuda_visible_devices"]
                )
    board = (out / "leaderboard" / "leaderboard.md").read_text()
    assert "| demo |" in board and "| tiny |" in board and "| late |" not in board

    shutil.copytree(tiny_models("qwen2_vl"), later)
    second = subprocess.run(sweep, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert second.returncode == 1  # `huge` still cannot be placed
    jobs = state(out)["jobs"]
    assert jobs["late/mis"]["status"] == "done"
    assert headers(out / "logs" / "demo__mis.generate.log") == 1
    assert headers(out / "logs" / "tiny__mis.generate.log") == 1
    assert headers(out / "logs" / "late__mis.generate.log") == 2
    assert "| late |" in (out / "leaderboard" / "leaderboard.md").read_text()


@pytest.mark.slow
def test_ray_losing_a_worker_is_a_reason_not_a_crash(ray_cluster: str) -> None:
    import ray

    from mis_eval.sweep.ray_pool import ray_failure

    @ray.remote(max_retries=0)
    def die() -> None:
        os._exit(1)

    with pytest.raises(ray.exceptions.RayError) as caught:
        ray.get(die.remote())
    assert ray_failure(caught.value).startswith("the Ray worker died (killed, or out of memory)")
