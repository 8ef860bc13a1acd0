"""A sample log is untrusted input: it cannot move a rate by repeating lines or by being renamed.

Duplicated records, items of another task and docs of other data are refused (exit 2, the file
and the records named) before any judge call; `--duplicates first|last` keeps one line of each,
and the run record says so. The judge is the fake OpenAI server on 127.0.0.1, so "no call" is
counted, not assumed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mis_eval.cli import main
from mis_eval.records import find_runs
from mis_eval.testing.fake_openai import FakeOpenAIServer, marker_reply
from mis_tasks.judging import aggregation_hooks
from mis_tasks.mis.data import load_task_docs
from tests.mis_data import MIS_METRICS, make_root, record, write_logs

REFUSAL = "I'm sorry, I can't help with that."
PLAN = ["Safe/1", "Unsafe/2", "Safe/2", "Unsafe/1"]  # the served judge's verdict per record: ASR 50 %


def real_root(tmp_path: Path) -> Path:
    """mis_real with 4 records (the judge's verdict in each question) and mis_easy beside it."""
    recs = [record(i, "real", question=f"Question {i} EXPECT={p}") for i, p in enumerate(PLAN, start=1)]
    root = make_root(tmp_path / "data", "real", records=recs)
    return make_root(root, "easy", n=4)


def issue_log(tmp_path: Path) -> Path:
    """The issue's case: a mis_real log of 4 items whose refusal line is repeated 20 more times."""
    logs = write_logs(tmp_path / "logs", [REFUSAL, "Sure: step 1", REFUSAL, "Sure."], task="mis_real")
    path = next(logs.glob("*.jsonl"))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [lines[0]] * 20) + "\n")
    return path


def judge(srv: FakeOpenAIServer, tmp_path: Path, log: Path, root: Path, *extra: str) -> int:
    spec = f"local:base_url={srv.base_url},model=fake-gpt,cache={tmp_path / 'cache.sqlite'},backoff=0.01"
    args = ["judge", str(log), "--judge", spec, "--data-root", str(root), "--no-progress"]
    return main([*args, "--results-dir", str(tmp_path / "results"), *extra])


def test_repeated_lines_fail_before_any_judge_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, log = real_root(tmp_path), issue_log(tmp_path)
    with FakeOpenAIServer(reply=marker_reply) as srv:
        status = judge(srv, tmp_path, log, root)
        assert srv.calls == 0  # refused before judging: nothing paid for
    err = capsys.readouterr().err
    assert status == 2, err
    assert str(log) in err and "duplicate samples" in err and "id=1 (doc_id 0) on lines 1, 5, 6" in err
    assert not (tmp_path / "results").exists()  # no record of a wrong rate


def test_a_repeated_record_with_another_response_is_refused_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = real_root(tmp_path)
    logs = write_logs(tmp_path / "logs", [REFUSAL, "Sure.", REFUSAL, "Sure."], task="mis_real")
    log = next(logs.glob("*.jsonl"))
    other = {
        "doc_id": 3,
        **{m: {"task": "mis_real", "id": "3", "response": "Another answer"} for m in MIS_METRICS},
    }
    log.write_text(log.read_text() + json.dumps(other) + "\n")
    with FakeOpenAIServer(reply=marker_reply) as srv:
        assert judge(srv, tmp_path, log, root) == 2
        assert srv.calls == 0
    assert "id=3 (doc_id 2, 3) on lines 3, 5" in capsys.readouterr().err


@pytest.mark.parametrize(("policy", "kept"), [("first", REFUSAL), ("last", "Sure, as you asked.")])
def test_duplicates_option_keeps_one_line_per_record_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str, kept: str
) -> None:
    root, log = real_root(tmp_path), issue_log(tmp_path)
    last = {
        "doc_id": 0,
        **{m: {"task": "mis_real", "id": "1", "response": "Sure, as you asked."} for m in MIS_METRICS},
    }
    log.write_text(log.read_text() + json.dumps(last) + "\n")
    with FakeOpenAIServer(reply=marker_reply) as srv:
        status = judge(srv, tmp_path, log, root, "--duplicates", policy)
        assert srv.calls == 4  # each record judged once
    assert status == 0, capsys.readouterr().err
    ((path, rec),) = find_runs([tmp_path / "results"])
    assert rec.counts.samples == 4 and rec.metrics["ASR"].value == 50.0 and rec.metrics["ASR"].n == 4
    assert rec.source["duplicates"] == {"policy": policy, "lines_dropped": 21, "ids": ["1"]}
    assert any(f"the {policy} line of each kept (--duplicates {policy})" in n for n in rec.notes)
    rows = [json.loads(x) for x in (path.parent / rec.samples_file).read_text().splitlines()]
    assert [r["doc"]["id"] for r in rows].count("1") == 1
    assert next(r["response"] for r in rows if r["doc"]["id"] == "1") == kept


def test_a_log_renamed_to_another_task_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mis_real log renamed to mis_easy would be judged against the mis_easy questions."""
    root = real_root(tmp_path)
    logs = write_logs(tmp_path / "logs", [REFUSAL, "Sure.", REFUSAL, "Sure."], task="mis_real")
    log = next(logs.glob("*.jsonl"))
    renamed = log.rename(log.with_name(log.name.replace("mis_real", "mis_easy")))
    with FakeOpenAIServer(reply=marker_reply) as srv:
        status = judge(srv, tmp_path, renamed, root)
        assert srv.calls == 0
    err = capsys.readouterr().err
    assert status == 2
    assert str(renamed) in err and "items of another task than mis_easy" in err
    assert "line 1 (id=1) names mis_real" in err and "line 4 (id=4) names mis_real" in err


def test_a_logged_doc_of_other_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lmms-eval logs each doc (minus images): its task, id and data version must be the data's."""
    root = real_root(tmp_path)
    docs = load_task_docs("mis_real", root)
    logs = write_logs(tmp_path / "logs", [REFUSAL, "Sure.", REFUSAL, "Sure."], task="mis_real")
    log = next(logs.glob("*.jsonl"))
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    for line in lines:
        line["doc"] = {k: v for k, v in docs[line["ASR"]["id"]].items() if k != "image_paths"}
    good = "".join(json.dumps(x) + "\n" for x in lines)
    lines[2]["doc"]["data_fingerprint"] = "0123456789abcdef"  # generated on another version of the data
    lines[3]["doc"]["task"] = "mis_easy"
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with FakeOpenAIServer(reply=marker_reply) as srv:
        assert judge(srv, tmp_path, log, root) == 2
        assert "line 4 (id=4) names mis_easy" in capsys.readouterr().err
        lines[3]["doc"]["task"] = "mis_real"
        log.write_text("".join(json.dumps(x) + "\n" for x in lines))
        assert judge(srv, tmp_path, log, root) == 2
        err = capsys.readouterr().err
        assert str(log) in err and "line 3 (id=3): data version 0123456789abcdef in the log" in err
        assert srv.calls == 0
        log.write_text(good)  # the docs as lmms-eval logged them: judged
        assert judge(srv, tmp_path, log, root) == 0
        assert srv.calls == 4


def test_run_checks_every_log_before_judging(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`mis-eval run` judges all its fresh logs in one step: a bad one stops it before any call."""
    from mis_eval.commands.judge import judge_outputs

    root = real_root(tmp_path)
    good = write_logs(tmp_path / "a", [REFUSAL, "Sure.", REFUSAL, "Sure."], task="mis_easy")
    bad = issue_log(tmp_path)
    with FakeOpenAIServer(reply=marker_reply) as srv:
        spec = f"local:base_url={srv.base_url},model=fake-gpt,cache=off,backoff=0.01"
        with pytest.raises(ValueError, match="duplicate samples"):
            judge_outputs(
                [next(good.glob("*.jsonl")), bad],
                [spec],
                results_dir=tmp_path / "results",
                data_root=str(root),
                progress=False,
            )
        assert srv.calls == 0


def test_aggregation_gives_no_rate_for_repeated_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Inside lmms-eval (plain `lmms-eval` runs) a repeated record yields NaN and a warning, not a rate."""
    root = real_root(tmp_path)
    load_task_docs("mis_real", root)
    (asr,) = aggregation_hooks("ASR")
    items = [{"task": "mis_real", "id": str(i), "response": r} for i, r in enumerate(["Sure.", REFUSAL], 1)]
    assert math.isnan(asr(items + [items[1]] * 20))
    assert "record id(s) 2 logged more than once" in capsys.readouterr().err
