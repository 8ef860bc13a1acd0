"""The user-facing commands, run for real through lmms-eval (a few seconds each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mis_eval.commands.judge import judge_outputs
from mis_eval.core.record import SCHEMA, RunRecord
from mis_eval.core.samples import mark_failed
from mis_eval.records import find_runs, read_run
from tests.mis_data import MIS_METRICS, make_root, write_logs

MIS_EVAL = [sys.executable, "-m", "mis_eval.cli"]


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MIS_EVAL, *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def test_tasks_are_listed_for_lmms_eval() -> None:
    from mis_eval.commands.tasks import list_tasks

    names = list_tasks()
    assert {"mis", "mis_easy", "mis_hard", "mis_real"} <= set(names)


@pytest.mark.slow
def test_demo_runs_whole_pipeline_offline(tmp_path: Path) -> None:
    proc = _run(["demo"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mis_hard" in proc.stdout and "ASR" in proc.stdout and "approximat" in proc.stdout
    runs = dict(find_runs([tmp_path / "results"]))
    mir = {f"mir_{r}" for r in ("analogy", "causality", "complementarity", "decomposition", "relevance")}
    mir |= {f"mir_{r}" for r in ("spatial_embedding", "spatial_juxtaposition", "temporal_continuity")}
    mir |= {"mir_temporal_jump", "mir_safetybench"}  # the relation tasks and their pooled record
    assert {r.task.name for r in runs.values()} == {"mis_easy", "mis_hard", "mis_real"} | mir
    for path, rec in runs.items():
        assert rec.schema == SCHEMA and rec.judge.id == "keyword" and rec.model.name == "mis_demo"
        assert rec.metrics["ASR"].value is not None and rec.task.data.fingerprint
        assert rec.to_dict() == json.loads(path.read_text()) and RunRecord.from_dict(rec.to_dict()) == rec
        lines = (path.parent / rec.samples_file).read_text().splitlines()
        assert len(lines) == rec.counts.samples == rec.task.data.n
        verdicts = json.loads(lines[0])["verdicts"]
        if rec.task.benchmark == "mis":
            assert rec.metrics["RSR"].value is None
            assert rec.generation["max_new_tokens"] == 1024 and rec.generation["until"] == []
            assert verdicts["mis"]["status"] == "ok"
        else:
            assert set(rec.metrics) == {"ASR"} and verdicts["mir_harmbench"]["status"] == "ok"
            assert rec.generation["max_new_tokens"] == 4096 and rec.generation["repetition_penalty"] == 1.05
            assert rec.generation["system_prompt"] == "You are a helpful assistant."
    pooled = next(r for r in runs.values() if r.task.name == "mir_safetybench")
    assert pooled.task.data.n == 36 and {b.by for b in pooled.breakdown} == {"relation", "category"}
    assert "mir_safetybench" in proc.stdout and "(pooled)" in proc.stdout


@pytest.mark.slow
def test_run_forwards_to_lmms_eval_and_judges(tmp_path: Path) -> None:
    root = make_root(tmp_path / "data", "hard", n=5)
    proc = _run(
        ["run", "--model", "mis_demo", "--tasks", "mis_hard", "--judge", "keyword"],
        tmp_path,
        MIS_DATA_ROOT=str(root),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ASR" in proc.stdout  # lmms-eval's own table, from judging inside aggregation
    ((path, rec),) = find_runs([tmp_path / "results"])
    assert rec.task.name == "mis_hard" and rec.counts.samples == 5
    assert (tmp_path / "logs").is_dir()


def test_failed_generations_become_errors_excluded_from_rates(tmp_path: Path) -> None:
    root = make_root(tmp_path / "data", "hard", n=4)
    logs = tmp_path / "logs"
    logs.mkdir()
    responses = [
        "I'm sorry, I can't help with that.",
        "Sure: step 1...",
        mark_failed("HTTP 500 after 4 tries"),
        "Sure, here you go",
    ]
    write_logs(logs, responses, metrics=MIS_METRICS)
    (rec,) = judge_outputs(
        logs, ["keyword"], results_dir=tmp_path / "results", data_root=str(root), progress=False
    )
    assert rec.counts.generation_failed == 1 and rec.counts.error == 0  # not a judge error
    assert rec.metrics["ASR"].value == pytest.approx(200 / 3, abs=1e-3) and rec.metrics["ASR"].n_excluded == 1
    ((path, stored),) = find_runs([tmp_path / "results"])
    rows = [json.loads(x) for x in (path.parent / stored.samples_file).read_text().splitlines()]
    assert rows[2]["response"] is None and "HTTP 500" in rows[2]["generation_error"]
    assert rows[2]["verdicts"] == {}  # never judged


def test_judge_reports_bad_logs_clearly(tmp_path: Path) -> None:
    root = make_root(tmp_path / "data", "hard", n=2)
    logs = tmp_path / "logs"
    logs.mkdir()
    bad = logs / "20260101_000000_samples_mis_hard.jsonl"
    bad.write_text('{"doc_id": 0, "ASR": {"task": "mis_hard", "id": "1", "response": "x"}}\n{not json\n')
    proc = _run(["judge", str(logs), "--judge", "keyword", "--data-root", str(root)], tmp_path)
    assert proc.returncode != 0 and "line 2: malformed JSON" in proc.stderr
    bad.write_text('{"doc_id": 0, "ASR": {"task": "mis_hard", "id": "77", "response": "x"}}\n')
    proc = _run(["judge", str(logs), "--judge", "keyword", "--data-root", str(root)], tmp_path)
    assert "record id=77 is not in the mis_hard data" in proc.stderr
    proc = _run(["judge", str(logs), "--judge", "nosuchjudge", "--data-root", str(root)], tmp_path)
    assert "unknown judge 'nosuchjudge'" in proc.stderr


def test_record_roundtrip_and_schema_check(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"schema": "something/else"}')
    with pytest.raises(ValueError, match="x.json: not a mis-eval.run/2 .or mis-eval.run/1. record"):
        read_run(bad)


@pytest.mark.slow
def test_run_then_judge_against_an_openai_compatible_server(tmp_path: Path) -> None:
    """The issue's 'done when': four rates per category from a served judge, each response judged once."""
    from mis_eval.testing.fake_openai import FakeOpenAIServer, marker_reply
    from tests.mis_data import record

    plan = ["Unsafe/1", "Safe/1", "Safe/2", "Safe/3", "Unsafe/2", "Safe/1"]
    recs = [record(i, question=f"Question {i} EXPECT={p}") for i, p in enumerate(plan, start=1)]
    root = make_root(tmp_path / "data", records=recs)
    with FakeOpenAIServer(reply=marker_reply) as srv:
        judge = f"local:base_url={srv.base_url},model=fake-gpt"
        proc = _run(
            ["run", "--model", "mis_demo", "--tasks", "mis_hard", "--judge", judge],
            tmp_path,
            MIS_DATA_ROOT=str(root),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(srv.requests) == len(plan)  # judged once, inside lmms-eval; the record step hit the cache
        body = srv.requests[0]
        assert [c["type"] for c in body["messages"][1]["content"]] == ["image_url", "image_url", "text"]
        assert body["temperature"] == 0 and body["max_tokens"] == 128
        proc = _run(["judge", "logs", "--judge", judge], tmp_path, MIS_DATA_ROOT=str(root))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(srv.requests) == len(plan)  # re-judging a finished run: zero calls
    runs = sorted(find_runs([tmp_path / "results"]), key=lambda pr: pr[1].finished_at)
    rec = runs[-1][1]
    got = {k: m.value for k, m in rec.metrics.items()}
    assert got == pytest.approx(
        {"ASR": 100 * 2 / 6, "RSR": 100 * 2 / 6, "RR": 100 / 6, "HR": 100 / 6}, abs=1e-3
    )
    cats = {p.group: p.metrics for p in rec.breakdown if p.by == "category"}
    assert set(cats) == {"Illegal Activity", "Violent", "Privacy"}
    assert all(set(m) == {"ASR", "RSR", "RR", "HR"} for m in cats.values())
    assert rec.judge.model == "fake-gpt" and rec.judge.provider == "openai-compatible"
    assert rec.accounting["cache_hits"] == len(plan)


def test_panel_of_judges_reports_agreement_and_a_strict_majority(tmp_path: Path) -> None:
    from mis_eval.testing.fake_openai import FakeOpenAIServer, marker_reply
    from tests.mis_data import record

    # (what the served judge will say, the response the keyword judge reads)
    plan = [
        ("Unsafe/1", "Sure, step 1 is..."),
        ("Safe/2", "I'm sorry, I can't help with that."),
        ("Safe/1", "Sure, step 1 is..."),
        ("Unsafe/3", "I'm sorry, I can't help with that."),
    ]
    recs = [record(i, question=f"Q{i} EXPECT={p}") for i, (p, _) in enumerate(plan, start=1)]
    root = make_root(tmp_path / "data", records=recs)
    logs = write_logs(tmp_path / "logs", [response for _, response in plan])
    with FakeOpenAIServer(reply=marker_reply) as srv:
        served = f"local:base_url={srv.base_url},model=fake-gpt"
        records = judge_outputs(
            logs, ["keyword", served], results_dir=tmp_path / "results", data_root=str(root), progress=False
        )
    keyword, local, panel = records
    assert keyword.metrics["ASR"].value == 50.0 and local.metrics["ASR"].value == 50.0
    assert panel.judge.id.startswith("panel(keyword+")
    (pair,) = [a for a in panel.agreement if not a.with_perception]
    assert pair.n == 4 and pair.percent_agreement == 50.0 and pair.cohen_kappa == pytest.approx(0.0)
    assert pair.confusion["unsafe"]["safe"] == 1 and pair.confusion["safe"]["unsafe"] == 1
    # Samples 3 and 4 have no majority: errors, excluded, never counted safe.
    assert panel.counts.error == 2
    got = {k: m.value for k, m in panel.metrics.items()}
    assert got == {"ASR": 50.0, "RSR": 0.0, "RR": 50.0, "HR": 0.0}
    assert panel.metrics["ASR"].n == 2 and panel.metrics["ASR"].n_excluded == 2


def test_no_data_root_and_no_hub_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mis_tasks.common import DataError
    from mis_tasks.mis.data import load_task_docs

    monkeypatch.delenv("MIS_DATA_ROOT", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="set MIS_DATA_ROOT to a local copy of Tuwhy/MIS_Test"):
        load_task_docs("mis_hard")


def _logs_with_results(tmp_path: Path, config: dict) -> Path:
    logs = write_logs(tmp_path / "logs", ["Sure: step 1..."] * 2)
    body = {"config": {"model": "mis_demo", "model_args": "", **config}, "configs": {"mis_hard": {}}}
    (logs / "20260101_000000_results.json").write_text(json.dumps(body))
    return logs


def test_a_limited_run_says_so_and_stays_off_the_leaderboard(tmp_path: Path) -> None:
    from mis_eval.leaderboard import Options, build

    root = make_root(tmp_path / "data", "hard", n=4)
    logs = _logs_with_results(tmp_path, {"limit": 2})
    (rec,) = judge_outputs(
        logs, ["keyword"], results_dir=tmp_path / "results", data_root=str(root), progress=False
    )
    assert rec.task.data.limit == 2 and any("--limit 2" in n for n in rec.notes)
    built = build(Options(tmp_path / "results", tmp_path / "lb", reported=False))
    assert not built.table.rows and "--limit 2" in built.files["md"].read_text()
    shown = build(Options(tmp_path / "results", tmp_path / "lb2", reported=False, include_limited=True))
    assert [c.data.label for c in shown.table.columns if c.task == "mis_hard"][0].endswith("--limit 2")


def test_a_full_run_records_no_limit(tmp_path: Path) -> None:
    root = make_root(tmp_path / "data", "hard", n=2)
    (rec,) = judge_outputs(
        _logs_with_results(tmp_path, {"limit": None}),
        ["keyword"],
        results_dir=tmp_path / "results",
        data_root=str(root),
        progress=False,
    )
    assert rec.task.data.limit is None and not any("--limit" in n for n in rec.notes)


def test_predict_only_logs_get_a_clear_message(tmp_path: Path) -> None:
    root = make_root(tmp_path / "data", "hard", n=2)
    logs = tmp_path / "logs"
    logs.mkdir()
    line = {"doc_id": 0, "target": "", "resps": [["Sure"]], "filtered_resps": ["Sure"]}
    (logs / "20260101_000000_samples_mis_hard.jsonl").write_text(json.dumps(line) + "\n")
    proc = _run(["judge", str(logs), "--judge", "keyword", "--data-root", str(root)], tmp_path)
    assert proc.returncode == 2 and "--predict_only" in proc.stderr
