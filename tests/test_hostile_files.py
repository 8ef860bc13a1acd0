"""Hostile and broken files under results/: one bad file never stops a reader, and runs never share one.

Every reader (leaderboard, viewer, attribution) skips a file it cannot use with a warning naming
it: wrong types at every level of a run record and of its per-sample rows, nesting too deep for
the JSON parser, bytes that are not UTF-8, an empty file, a folder named *.json. `mis-eval judge`
on such a log stops with one line naming the file (exit 2). Run records are written under names
no other run holds, and never over an existing file.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mis_eval.attribution.load import load_groups
from mis_eval.cli import main
from mis_eval.core.record import RunRecord, is_run_record
from mis_eval.leaderboard.sources import load_results
from mis_eval.leaderboard.spec import load_spec
from mis_eval.leaderboard.table import build_table, select
from mis_eval.records import find_runs, read_run, read_run_samples, write_run
from mis_eval.testing.synthetic_runs import mis_record
from mis_eval.viewer import build_viewer
from tests.mis_data import make_root, write_logs
from tests.test_attribution import write_variant_runs

DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON, too deep for Python's parser (RecursionError)
WRONG: list[Any] = [None, 7, -1.5, "x", [], {}, True, [[[1]]], float("nan")]


def mis_eval(args: list[str], cwd: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The command in this process (an exception it does not handle fails the test): status, out, err."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        status = main(args)
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return status, out, err


# ---- item 7: one file per run -------------------------------------------------------------------


def test_models_whose_names_map_to_one_file_keep_both_runs(tmp_path: Path) -> None:
    import random
    from datetime import UTC, datetime

    when = datetime(2026, 12, 5, tzinfo=UTC)
    a = mis_record("org/model", "mis_hard", random.Random(1), when)
    b = mis_record("org_model", "mis_hard", random.Random(2), when)  # same slug, same second
    pa, pb = write_run(a, [{"doc": {"id": "1"}, "verdicts": {}}], tmp_path), write_run(b, [], tmp_path)
    assert pa != pb and pa.parent == pb.parent
    assert {r.model.name for _, r in find_runs([tmp_path])} == {"org/model", "org_model"}
    assert read_run(pa).run_id == a.run_id and read_run(pb).run_id == b.run_id != a.run_id
    assert len(read_run_samples(pa, read_run(pa))) == 1 and read_run_samples(pb, read_run(pb)) == []


def test_records_written_at_once_never_replace_each_other(tmp_path: Path) -> None:
    import random
    from datetime import UTC, datetime

    when = datetime(2026, 12, 5, tzinfo=UTC)
    records = [mis_record("m", "mis_hard", random.Random(i), when) for i in range(8)]
    start = threading.Barrier(len(records))
    paths: list[Path] = []

    def write(rec: RunRecord) -> None:
        start.wait()
        paths.append(write_run(rec, [{"doc": {"id": rec.metrics["ASR"].value}, "verdicts": {}}], tmp_path))

    threads = [threading.Thread(target=write, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 8
    found = {r.metrics["ASR"].value for _, r in find_runs([tmp_path])}
    assert found == {r.metrics["ASR"].value for r in records}
    for p in paths:  # each record has its own samples file, with its own row
        rec = read_run(p)
        assert read_run_samples(p, rec)[0]["doc"]["id"] == rec.metrics["ASR"].value


def test_write_new_never_replaces_a_file(tmp_path: Path) -> None:
    from mis_eval.core.files import write_new

    target = tmp_path / "r.json"
    target.write_text("a run")
    with pytest.raises(FileExistsError):
        write_new(target, "another run")
    assert target.read_text() == "a run" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


# ---- item 8: readers skip what they cannot use --------------------------------------------------


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Two judged MIS runs (the paper task and a variant) with their per-sample files."""
    root = make_root(tmp_path / "data", "hard", n=3)
    write_variant_runs(root, tmp_path / "results", {"both": "UUS", "first": "USS"})
    return tmp_path / "results"


def mutations(tree: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(where, wrong value) for every key at every level (the first element of each list or map)."""
    if isinstance(tree, dict):
        items = list(tree.items())
    elif isinstance(tree, list):
        items = list(enumerate(tree))
    else:
        return
    seen_shape: set[str] = set()
    for key, value in items:
        shape = type(value).__name__ if isinstance(tree, list) or path[-1:] in {("metrics",)} else str(key)
        if shape in seen_shape:
            continue  # one element of a list (or one metric) stands for the others
        seen_shape.add(shape)
        for wrong in WRONG:
            if type(wrong) is not type(value) or wrong != value:
                yield (*path, key), wrong
        yield from mutations(value, (*path, key))


def mutated(tree: Any, where: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(tree)
    node = out
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    return out


def read_everything(results: Path, out: Path) -> tuple[int, list[str]]:
    """Every reader over the folder (none may raise): runs each used, and the problems it named."""
    spec = load_spec()
    loaded = load_results(results, spec)
    build_table(select(loaded.entries), spec)  # sorting and laying out what was read
    groups = load_groups([results])
    viewer = build_viewer([results], out, progress=False)
    used = len(viewer.runs) + len(loaded.entries)
    return used, loaded.problems + groups.messages + getattr(viewer, "problems", [])


def test_every_wrong_type_in_a_run_record_is_skipped_with_a_warning(results: Path, tmp_path: Path) -> None:
    (path,) = [p for p in results.rglob("mis_hard__*.json")]
    good = json.loads(path.read_text())
    tried = 0
    for where, value in mutations(good):
        data = mutated(good, where, value)
        try:
            RunRecord.from_dict(data)
            valid = True
        except (KeyError, TypeError, ValueError, AttributeError):
            valid = False
        path.write_text(json.dumps(data))
        used, problems = read_everything(results, tmp_path / "viewer")  # never raises
        if not valid:  # only the other run is used (a leaderboard entry, a viewer run)
            assert used == 2, (where, value)
        if not valid and is_run_record(data):  # leaderboard, attribution and viewer each name the file
            assert sum(str(path) in p for p in problems) == 3, (where, value, problems)
        tried += 1
    assert tried > 300


def test_every_wrong_type_in_a_samples_row_is_skipped_with_a_warning(results: Path, tmp_path: Path) -> None:
    (path,) = [p for p in results.rglob("mis_hard__*.samples.jsonl")]
    lines = path.read_text().splitlines()
    good = json.loads(lines[0])
    tried = 0
    for where, value in mutations(good):
        path.write_text("\n".join([json.dumps(mutated(good, where, value)), *lines[1:]]) + "\n")
        read_everything(results, tmp_path / "viewer")  # never raises
        tried += 1
    assert tried > 50


CRAFTED: dict[str, bytes] = {
    "deep.json": DEEP.encode(),
    "latin1.json": '{"schema": "mis-eval.run/2", "model": "caf\xe9"}'.encode("latin-1"),
    "empty.json": b"",
    "array.json": b"[1, 2, 3]",
    "truncated.json": b'{"schema": "mis-eval.run/2", "model": {"na',
    "longint.json": b'{"results": {"x": ' + b"9" * 5000 + b"}}",  # past Python's 4300-digit limit
}


def craft(results: Path) -> list[str]:
    """Broken files beside the good runs; returns the names a warning must mention."""
    for name, blob in CRAFTED.items():
        (results / name).write_bytes(blob)
    (results / "folder.json").mkdir()
    (path,) = [p for p in results.rglob("mis_hard_first__*.json")]
    data = json.loads(path.read_text())
    odd = results / "m" / "odd_name.json"
    odd.write_text(json.dumps(data | {"model": data["model"] | {"name": 5}}))  # a non-string model name
    huge = data["metrics"] | {"ASR": data["metrics"]["ASR"] | {"value": 10**400}}  # beyond any float
    (results / "m" / "huge_value.json").write_text(json.dumps(data | {"metrics": huge}))
    lmms = {"results": {"mmstar": {"average,none": 10**400}}, "configs": {"mmstar": {}}, "model_name": "x"}
    (results / "huge_lmms_results.json").write_text(json.dumps(lmms))
    samples = path.with_name(data["samples_file"])
    deep_samples = results / "m" / "deep_samples.json"
    deep_samples.write_text(json.dumps(data | {"samples_file": "deep.samples.jsonl"}))
    (results / "m" / "deep.samples.jsonl").write_text(samples.read_text() + DEEP + "\n")
    return ["deep.json", "latin1.json", "empty.json", "truncated.json", "longint.json", "odd_name.json"] + [
        "huge_value.json",
        "huge_lmms_results.json",
    ]


def test_readers_skip_crafted_files_with_a_warning(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    named = craft(results)
    status, _, err = mis_eval(["leaderboard", "--results", str(results), "--out", "lb"], tmp_path, capsys)
    assert status == 0 and all(n in err for n in named), err
    assert "from 2 run(s)" in (tmp_path / "lb" / "leaderboard.md").read_text()  # the good runs are there
    status, out, err = mis_eval(["view", str(results), "--out", "vw", "--no-progress"], tmp_path, capsys)
    assert status == 0 and "odd_name.json" in err, err
    assert "deep.samples.jsonl: line 4: JSON nested too deeply" in err
    assert "6 sample(s) from 2 run(s)" in out  # the two good runs, 3 samples each
    status, out, err = mis_eval(["attribution", str(results), "--out", "at"], tmp_path, capsys)
    assert status == 0 and "odd_name.json" in err and "deep.json" in err, err
    assert (tmp_path / "at" / "attribution.md").is_file()
    strict = ["leaderboard", "--results", str(results), "--out", "lb", "--strict"]
    assert mis_eval(strict, tmp_path, capsys)[0] == 2


def test_judge_on_a_malformed_log_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_root(tmp_path / "data", "hard", n=2)
    logs = write_logs(tmp_path / "logs", ["Sure.", "No."])
    log = next(logs.glob("*.jsonl"))
    good = log.read_bytes()
    results = log.with_name("20260101_000000_results.json")
    cases: list[tuple[str, bytes, bytes | None, str]] = [
        ("deep line", good + DEEP.encode() + b"\n", None, "line 3: JSON nested too deeply"),
        ("not UTF-8", good + b'{"doc_id": 2, "x": "caf\xe9"}\n', None, "line 3: not UTF-8"),
        ("a list", b"[1, 2]\n" + good, None, "line 1: expected a JSON object, got list"),
        ("doc_id", good.replace(b'"doc_id": 0', b'"doc_id": "zero"'), None, "line 1: doc_id should be"),
        ("id", good.replace(b'"id": "1"', b'"id": {"a": 1}'), None, "line 1: record id should be"),
        ("deep results", good, DEEP.encode(), "20260101_000000_results.json: JSON nested too deeply"),
        ("results list", good, b"[]", "20260101_000000_results.json: expected a JSON object"),
        ("config", good, b'{"config": [1]}', "20260101_000000_results.json: config should be an object"),
    ]
    judge = ["judge", str(logs), "--judge", "keyword", "--data-root", str(root), "--no-progress"]
    for name, samples, result, message in cases:
        log.write_bytes(samples)
        if result is None:
            results.unlink(missing_ok=True)
        else:
            results.write_bytes(result)
        status, _, err = mis_eval(judge, tmp_path, capsys)
        assert status == 2 and message in err, (name, err)
        assert str(log if result is None else results) in err, (name, err)
    log.write_bytes(good)
    results.write_text(json.dumps({"model_name": 5, "config": {"model": "m"}}))  # a number as its name
    assert mis_eval(judge, tmp_path, capsys)[0] == 0
    ((_, rec),) = find_runs([tmp_path / "results"])
    assert rec.model.name == "5"
