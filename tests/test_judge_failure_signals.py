"""A judge that fails says so: exit status, incomplete records, precise causes, no hopeless retries.

All against real sockets: the local fake OpenAI server (mis_eval/testing/fake_openai.py) and a port
nothing listens on.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from judges.base import JudgeRequest, Status
from judges.engine import JudgeSetupError
from judges.registry import get_judge
from judges.rubric import Rubric
from mis_eval.records import find_runs
from mis_eval.report import overall_frame, overall_table
from mis_eval.testing.fake_openai import FakeOpenAIServer, marker_reply
from mis_tasks.mis.parsing import parse_mis
from tests.mis_data import MIS_METRICS, make_root, record, write_logs

ROOT = Path(__file__).resolve().parents[1]
RUBRIC = Rubric(name="mis", template="Judge.\n{question}\n{response}\nJSON.", parse=parse_mis)


def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reqs(tmp_path: Path, n: int) -> list[JudgeRequest]:
    img = tmp_path / "i.png"
    Image.new("RGB", (8, 8), (9, 9, 9)).save(img)
    return [
        JudgeRequest(
            key=f"k{i}", rubric=RUBRIC, images=(str(img),), fields={"question": f"q{i}", "response": "r"}
        )
        for i in range(n)
    ]


def logs_for(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """A data root of n MIS records whose questions ask the fake judge for Safe/1, and lmms-eval logs."""
    recs = [record(i, question=f"Question {i} EXPECT=Safe/1") for i in range(1, n + 1)]
    root = make_root(tmp_path / "data", records=recs)
    logs = write_logs(tmp_path / "logs", [f"answer {i}" for i in range(1, n + 1)], metrics=MIS_METRICS)
    return root, logs


def mis_eval(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mis_eval.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_all_verdicts_failing_exits_non_zero_and_marks_the_record_incomplete(tmp_path: Path) -> None:
    root, logs = logs_for(tmp_path, 12)
    with FakeOpenAIServer(reply=marker_reply, faults=lambda body, i: "401") as srv:
        judge = f"local:base_url={srv.base_url},model=fake-gpt,concurrency=2,backoff=0.01"
        proc = mis_eval(
            ["judge", str(logs), "--judge", judge, "--data-root", str(root), "--no-progress"], tmp_path
        )
        calls = srv.calls
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "INCOMPLETE: 12 of 12 verdicts unusable" in proc.stderr
    ((_, rec),) = find_runs([tmp_path / "results"])  # the record is still written
    assert rec.completeness.complete is False and rec.completeness.unusable == 12
    assert any(n.startswith("INCOMPLETE") for n in rec.notes)
    assert "INCOMPLETE" in proc.stdout  # the terminal table says so too
    # 401 cannot succeed: no retry, and once seen the rest of the batch is not sent
    assert calls <= 2, calls
    assert rec.accounting["retries"] == 0


def test_threshold_is_an_option_and_a_usable_run_exits_zero(tmp_path: Path) -> None:
    root, logs = logs_for(tmp_path, 10)
    # one garbage reply of 10: 10% unusable
    with FakeOpenAIServer(reply=marker_reply, faults=lambda body, i: "garbage" if i == 0 else None) as srv:
        judge = f"local:base_url={srv.base_url},model=fake-gpt,concurrency=1"
        base = ["judge", str(logs), "--judge", judge, "--data-root", str(root), "--no-progress"]
        strict = mis_eval(base, tmp_path)  # default 5%: incomplete
        lenient = mis_eval([*base, "--max-unusable", "0.2"], tmp_path)  # cached replies, 20% allowed
        bad = mis_eval([*base, "--max-unusable", "2"], tmp_path)
    assert strict.returncode == 3 and "1 of 10 verdicts unusable (10.0% > max_unusable 5%)" in strict.stderr
    assert lenient.returncode == 0, lenient.stderr[-2000:]
    assert bad.returncode == 2 and "not a fraction" in bad.stderr
    runs = sorted(
        (r for _, r in find_runs([tmp_path / "results"])), key=lambda r: r.completeness.max_unusable
    )
    assert [r.complete for r in runs] == [False, True]
    # the leaderboard ranks the complete run only, lists the other with its reason, shows it apart on request
    from mis_eval.leaderboard import Options, build

    built = build(Options(tmp_path / "results", tmp_path / "lb", reported=False))
    ((entry, why),) = built.left_out
    assert entry.run_id == runs[0].run_id and "1 of 10 verdicts unusable" in why
    assert not any("INCOMPLETE" in c.data.label for c in built.table.columns)
    both = build(
        Options(
            tmp_path / "results", tmp_path / "lb2", reported=False, include_incomplete=True, keep="per-judge"
        )
    )
    asr = [c.data.label for c in both.table.columns if c.task == "mis_hard" and c.metric == "ASR"]
    assert sorted(label.endswith("INCOMPLETE") for label in asr) == [False, True]


def test_summary_shows_the_rates_denominator_not_the_sample_count(tmp_path: Path) -> None:
    root, logs = logs_for(tmp_path, 10)
    faults = lambda body, i: "garbage" if i < 3 else None  # noqa: E731
    with FakeOpenAIServer(reply=marker_reply, faults=faults) as srv:
        judge = f"local:base_url={srv.base_url},model=fake-gpt,concurrency=1"
        proc = mis_eval(
            ["judge", str(logs), "--judge", judge, "--data-root", str(root), "--no-progress"], tmp_path
        )
    ((_, rec),) = find_runs([tmp_path / "results"])
    assert rec.metrics["ASR"].n == 7
    row = overall_frame([rec]).iloc[0]
    assert row["n"] == "7" and row["samples"] == 10 and row["judge errors"] == 3
    assert overall_table([rec]) in proc.stdout


def test_refused_connection_is_named_and_not_called_a_timeout(tmp_path: Path) -> None:
    port = closed_port()
    judge = get_judge(
        "local", base_url=f"http://127.0.0.1:{port}/v1", model="m", cache="off", backoff=0.01, max_retries=1
    )
    (v,) = judge.judge(reqs(tmp_path, 1), progress=False)
    assert v.status is Status.ERROR and "connection refused" in (v.error or "")
    assert "timed out" not in (v.error or "")
    assert v.calls == 2  # refused may be a restarting server: retried


def test_a_real_timeout_is_still_called_one(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=marker_reply, faults=["hang"], hang=5) as srv:
        judge = get_judge("local", base_url=srv.base_url, model="m", cache="off", timeout=0.3, max_retries=0)
        (v,) = judge.judge(reqs(tmp_path, 1), progress=False)
    assert v.status is Status.ERROR and "timed out after 0.3 s" in (v.error or "")


def test_bad_url_is_not_retried_and_stops_the_batch(tmp_path: Path) -> None:
    judge = get_judge("local", base_url="127.0.0.1:1/v1", model="m", cache="off", backoff=0.01, concurrency=1)
    verdicts = judge.judge(reqs(tmp_path, 5), progress=False)
    assert all(v.status is Status.ERROR for v in verdicts)
    assert "invalid URL" in (verdicts[0].error or "") and verdicts[0].calls == 1
    assert all(v.calls == 0 and "not sent" in (v.error or "") for v in verdicts[1:])
    assert judge.accounting()["calls"] == 1 and judge.accounting()["retries"] == 0


@pytest.mark.parametrize("status", ["401", "403"])
def test_auth_failures_are_not_retried_and_stop_the_batch(tmp_path: Path, status: str) -> None:
    with FakeOpenAIServer(reply=marker_reply, faults=lambda body, i: status) as srv:
        judge = get_judge("local", base_url=srv.base_url, model="m", cache="off", concurrency=1, backoff=0.01)
        verdicts = judge.judge(reqs(tmp_path, 4), progress=False)
        calls = srv.calls
    assert f"HTTP {status}" in (verdicts[0].error or "") and calls == 1
    assert all(v.status is Status.ERROR for v in verdicts)


def test_local_judge_without_model_on_a_dead_server_is_one_clear_line(tmp_path: Path) -> None:
    port = closed_port()
    with pytest.raises(JudgeSetupError, match=r"cannot list models at .*connection refused.*model=<id>"):
        get_judge("local", base_url=f"http://127.0.0.1:{port}/v1", cache="off").judge(
            reqs(tmp_path, 1), progress=False
        )
    root, logs = logs_for(tmp_path, 2)
    proc = mis_eval(
        [
            "judge",
            str(logs),
            "--judge",
            f"local:base_url=http://127.0.0.1:{port}/v1",
            "--data-root",
            str(root),
        ],
        tmp_path,
    )
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert (
        err.startswith("mis-eval judge: error: judge 'local': cannot list models")
        and "connection refused" in err
    )
    assert "Traceback" not in err and "Unclosed" not in err and len(err.splitlines()) == 1, err
