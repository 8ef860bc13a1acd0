"""The typed run record: every record the product writes survives to_dict/from_dict and disk unchanged,
files of the previous schema (mis-eval.run/1) still read, and a field no type declares is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mis_eval.commands.judge import judge_outputs
from mis_eval.core.record import (
    SCHEMA,
    SCHEMA_V1,
    Agreement,
    BreakdownRow,
    Completeness,
    Metric,
    RunRecord,
)
from mis_eval.records import find_runs, read_run, read_run_samples
from mis_eval.testing.synthetic_runs import make_results
from mis_eval.testing.synthetic_viewer import synthetic_run
from tests.mis_data import make_root, record, write_logs

V1 = Path(__file__).parent / "data" / "run_v1"  # written by the code before mis-eval.run/2
V1_PANEL = V1 / "mis_hard__panel_keyword_local_fake-gpt__20261203T181301Z.json"
V1_VARIANT = V1 / "mis_real_swapped__keyword__20261203T175338Z.json"


def _on_disk(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def assert_round_trips(path: Path, rec: RunRecord | None = None) -> RunRecord:
    """The file is exactly what its record writes, and the record survives to_dict/from_dict."""
    read = read_run(path)
    assert read.to_dict() == _on_disk(path)
    assert RunRecord.from_dict(read.to_dict()) == read
    assert json.loads(json.dumps(read.to_dict())) == read.to_dict()  # plain JSON, nothing lost on the way
    if rec is not None:
        assert read == rec  # what the writer returned is what a reader gets
    return read


def test_judged_runs_round_trip_with_breakdown_agreement_completeness_and_limit(tmp_path: Path) -> None:
    from mis_eval.testing.fake_openai import FakeOpenAIServer, marker_reply

    plan = [("Unsafe/1", "Sure, step 1 is..."), ("Safe/2", "I'm sorry, I can't help with that.")] * 2
    recs = [record(i, question=f"Q{i} EXPECT={p}") for i, (p, _) in enumerate(plan, start=1)]
    root = make_root(tmp_path / "data", records=recs)
    logs = write_logs(tmp_path / "logs", [response for _, response in plan])
    body = {"config": {"model": "mis_demo", "model_args": "", "limit": 4}, "configs": {"mis_hard": {}}}
    (logs / "20260101_000000_results.json").write_text(json.dumps(body))
    with FakeOpenAIServer(reply=marker_reply) as srv:
        served = f"local:base_url={srv.base_url},model=fake-gpt"
        written = judge_outputs(
            logs, ["keyword", served], results_dir=tmp_path / "results", data_root=str(root), progress=False
        )
    found = dict(find_runs([tmp_path / "results"]))
    assert len(found) == len(written) == 3
    by_run_id = {r.run_id: r for r in written}
    for path, rec in found.items():
        assert_round_trips(path, by_run_id[rec.run_id])
        assert rec.schema == SCHEMA and rec.task.data.limit == 4
        assert rec.breakdown and all(isinstance(b, BreakdownRow) for b in rec.breakdown)
        assert all(isinstance(m, Metric) for b in rec.breakdown for m in b.metrics.values())
        assert isinstance(rec.completeness, Completeness)
        assert rec.task.extra == {
            "split": "hard",
            "variant": "both",
            "model_sees": "both images in the original order (the paper's task)",
            "judge_sees": "both images in the original order",
        }
    (panel,) = [r for r in found.values() if r.judge.provider == "panel"]
    assert {a.with_perception for a in panel.agreement} == {False, True}
    assert all(isinstance(a, Agreement) for a in panel.agreement)
    served_run = next(r for r in found.values() if r.judge.model == "fake-gpt")
    assert served_run.accounting["calls"] == 4


def test_synthetic_runs_round_trip(tmp_path: Path) -> None:
    make_results(tmp_path / "board", n_models=2, n_tasks=9)
    paths = synthetic_run(tmp_path / "viewer", judges=("j1", "j2"), panel=True, n=8)
    runs = find_runs([tmp_path / "board", tmp_path / "viewer"])
    assert len(runs) == 2 * 4 + len(paths)  # three MIS splits and one extra task per model, plus the viewer's
    for path, rec in runs:
        assert assert_round_trips(path) == rec
    assert {r.task.data.source for _, r in runs} == {"synthetic", None}


@pytest.mark.parametrize("path", [V1_PANEL, V1_VARIANT], ids=["panel", "variant"])
def test_a_v1_file_reads_as_v2_with_the_same_content(path: Path, tmp_path: Path) -> None:
    old = _on_disk(path)
    assert old["schema"] == SCHEMA_V1
    rec = read_run(path)
    assert rec.schema == SCHEMA
    assert rec.to_dict() == old | {"schema": SCHEMA}  # /2 keeps /1's layout
    assert RunRecord.from_dict(rec.to_dict()) == rec
    assert len(read_run_samples(path, rec)) == rec.counts.samples
    assert all(isinstance(m, Metric) for b in rec.breakdown for m in b.metrics.values())
    shutil.copytree(V1, tmp_path / "mixed")
    make_results(tmp_path / "mixed", n_models=1, n_tasks=1)  # a /2 record beside them
    schemas = sorted(_on_disk(p)["schema"] for p, _ in find_runs([tmp_path / "mixed"]))
    assert schemas == [SCHEMA_V1, SCHEMA_V1, SCHEMA]


def test_v1_typed_fields() -> None:
    variant, panel = read_run(V1_VARIANT), read_run(V1_PANEL)
    assert variant.task.extra["variant"] == "swapped" and variant.task.data.limit is None
    assert variant.breakdown[0].metrics["ASR"].ci_method == "exact (Clopper-Pearson)"
    assert variant.complete and panel.completeness is not None and not panel.complete
    assert panel.task.data.limit == 4
    pair = next(a for a in panel.agreement if not a.with_perception)
    assert pair.judges == ["keyword", "local:fake-gpt"] and pair.confusion["unsafe"]["safe"] == 1


def test_v1_fields_a_writer_left_out_read_as_their_defaults() -> None:
    old = _on_disk(V1_VARIANT)
    del (
        old["completeness"],
        old["judge"]["approximation"],
        old["counts"]["cached"],
        old["task"]["data"]["limit"],
    )
    rec = RunRecord.from_dict(old)
    assert rec.completeness is None and rec.complete
    assert rec.judge.approximation is None and rec.counts.cached == 0 and rec.task.data.limit is None
    assert rec.to_dict()["completeness"] == {}  # as /1 wrote a record without it
    assert RunRecord.from_dict(rec.to_dict()) == rec


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ((), "record: unknown field(s) 'surprise'"),
        (("counts",), "counts: unknown field(s) 'surprise'"),
        (("task", "data"), "task.data: unknown field(s) 'surprise'"),
        (("judge",), "judge: unknown field(s) 'surprise'"),
        (("breakdown", 0, "metrics", "ASR"), "breakdown[0].metrics.ASR: unknown field(s) 'surprise'"),
        (("agreement", 1), "agreement[1]: unknown field(s) 'surprise'"),
        (("completeness",), "completeness: unknown field(s) 'surprise'"),
    ],
)
def test_an_unknown_field_is_an_error_naming_where(where: tuple[str | int, ...], message: str) -> None:
    data = _on_disk(V1_PANEL)
    target: Any = data
    for key in where:
        target = target[key]
    target["surprise"] = 1
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        RunRecord.from_dict(data)


def test_the_benchmarks_own_task_fields_are_kept_but_may_not_shadow_the_records(tmp_path: Path) -> None:
    data = _on_disk(V1_VARIANT)
    data["task"]["scenario_set"] = ["01", "02"]
    rec = RunRecord.from_dict(data)
    assert rec.task.extra["scenario_set"] == ["01", "02"]
    assert rec.to_dict()["task"]["scenario_set"] == ["01", "02"]
    with pytest.raises(ValueError, match="would shadow"):
        type(rec.task)(name="t", benchmark="b", version="1", extra={"data": 1})


def test_an_unknown_schema_is_refused(tmp_path: Path) -> None:
    data = _on_disk(V1_VARIANT) | {"schema": "mis-eval.run/3"}
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="r.json: not a mis-eval.run/2"):
        read_run(tmp_path / "r.json")
    with pytest.raises(ValueError, match="r.json: not a mis-eval.run/2"):
        find_runs([tmp_path / "r.json"])
