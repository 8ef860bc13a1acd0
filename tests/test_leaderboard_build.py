"""Leaderboard regeneration from a results folder: selection, columns per judge, files, escaping."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from markupsafe import escape
from PIL import Image

from mis_eval.cli import main
from mis_eval.core.record import Counts, JudgeRecord, Metric
from mis_eval.leaderboard import Options, build
from mis_eval.leaderboard.render import md_escape
from mis_eval.leaderboard.sources import load_results
from mis_eval.leaderboard.spec import load_spec
from mis_eval.pipeline import completeness
from mis_eval.records import write_run
from mis_eval.testing.synthetic_runs import (
    GPT4O_JUDGE,
    lmms_results,
    make_results,
    mis_record,
    write_lmms_results,
)

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def rng(seed: int = 0):  # noqa: ANN201 - tiny helper
    import random

    return random.Random(seed)


def write_mis(
    results: Path, model: str, task: str, asr: float, when: datetime, judge: JudgeRecord | None = None
) -> Path:
    rec = mis_record(model, task, rng(), when, judge=judge)
    rec.metrics["ASR"] = Metric(asr, asr - 5, asr + 5, 100, 2)
    return write_run(rec, [], results)


def cell(built, model: str, task: str, metric: str = "ASR") -> list[float | None]:  # noqa: ANN001
    """Every value the table shows for model x task x metric (one per column it appears in)."""
    out = []
    for row in built.table.rows:
        if row.model == model and row.origin == "measured":
            for i, col in enumerate(built.table.columns):
                if col.task == task and col.metric == metric and i in row.cells:
                    out.append(row.cells[i].metric.value)
    return out


def test_files_from_a_synthetic_results_folder(tmp_path: Path) -> None:
    make_results(tmp_path / "results", n_models=3, n_tasks=8)
    built = build(Options(tmp_path / "results", tmp_path / "out"))
    assert set(built.files) == {"md", "csv", "cells_csv", "html", "png"}
    md = built.files["md"].read_text()
    for m in range(3):
        assert f"org/tiny-model-0{m}" in md
    assert "MMStar" in md and "Capability avg" in md and "GPT-4o *(reported)*" in md
    with built.files["csv"].open() as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows if r["origin"] == "measured"] == [
        r.model for r in built.table.rows if r.origin == "measured"
    ]
    with built.files["cells_csv"].open() as f:
        cells = list(csv.DictReader(f))
    assert cells and all(c["judge"] for c in cells)  # the judge of every number
    assert {c["judge"] for c in cells if c["task"] == "mmstar"} == {"lmms-eval scorer"}
    with Image.open(built.files["png"]) as im:
        assert im.size[0] > 600
    measured = [r for r in built.table.rows if r.origin == "measured"]
    # capability average = mean of the five capability headline numbers of that row
    for r in measured:
        vals = [r.cells[i].metric.value for i, c in enumerate(built.table.columns) if c.kind == "capability"]
        assert r.summaries["Capability avg"].value == pytest.approx(sum(vals) / len(vals), abs=1e-3)
    # default sort: MIS ASR ascending (lower is better), measured rows before reported ones
    asr = [r.summaries["MIS ASR"].value for r in measured]
    assert asr == sorted(asr)


def test_newest_run_per_model_and_task_unless_pinned(tmp_path: Path) -> None:
    res = tmp_path / "results"
    old = write_mis(res, "m", "mis_hard", 40.0, T0)
    write_mis(res, "m", "mis_hard", 20.0, T0 + timedelta(days=1))
    built = build(Options(res, tmp_path / "out", reported=False))
    assert cell(built, "m", "mis_hard") == [20.0]
    pinned = build(Options(res, tmp_path / "out", reported=False, pins=[str(old.relative_to(res))]))
    assert cell(pinned, "m", "mis_hard") == [40.0]


def test_different_judges_get_separate_columns_and_are_never_averaged(tmp_path: Path) -> None:
    res = tmp_path / "results"
    write_mis(res, "a", "mis_hard", 30.0, T0)  # keyword judge
    write_mis(res, "b", "mis_hard", 60.0, T0, judge=GPT4O_JUDGE)
    write_mis(res, "b", "mis_easy", 10.0, T0)  # b: easy by keyword, hard by GPT-4o
    built = build(Options(res, tmp_path / "out", reported=False))
    hard = [c for c in built.table.columns if c.task == "mis_hard" and c.metric == "ASR"]
    assert len(hard) == 2 and all(c.conflict for c in hard)
    assert {c.judge.label.split(" ")[0] for c in hard} == {"keyword", "gpt4o:"}
    row_b = next(r for r in built.table.rows if r.model == "b")
    summary = row_b.summaries["MIS ASR"]
    assert summary.value is None and "different judges" in summary.flag
    row_a = next(r for r in built.table.rows if r.model == "a")
    assert row_a.summaries["MIS ASR"].value == 30.0
    html = built.files["html"].read_text()
    assert "never averaged" in html


def test_keep_per_judge_shows_both_runs(tmp_path: Path) -> None:
    res = tmp_path / "results"
    write_mis(res, "m", "mis_hard", 30.0, T0)
    write_mis(res, "m", "mis_hard", 55.0, T0 + timedelta(hours=1), judge=GPT4O_JUDGE)
    assert cell(build(Options(res, tmp_path / "o1", reported=False)), "m", "mis_hard") == [55.0]
    both = build(Options(res, tmp_path / "o2", reported=False, keep="per-judge"))
    assert sorted(cell(both, "m", "mis_hard")) == [30.0, 55.0]
    judge_only = build(Options(res, tmp_path / "o3", reported=False, judge="keyword"))
    assert cell(judge_only, "m", "mis_hard") == [30.0]


def test_lmms_eval_results_are_read_as_lmms_eval_writes_them(tmp_path: Path) -> None:
    res = tmp_path / "results"
    body = lmms_results("org/cap", {"mmstar": 50.0, "mmt_val": 40.0}, T0, limit=100)
    body["results"]["mmstar"]["average_stderr,none"] = 0.01  # a real stderr -> CI from it
    body["results"]["mis_capability"] = {"alias": "mis_capability"}  # group row: no config, skipped
    write_lmms_results(res, body)
    loaded = load_results(res, load_spec())
    assert not loaded.problems
    by_task = {e.task: e for e in loaded.entries}
    assert set(by_task) == {"mmstar", "mmt_val"}
    star = by_task["mmstar"].metrics["average,none"]
    assert star.value == pytest.approx(50.0) and star.ci_low == pytest.approx(48.04)
    mmt = by_task["mmt_val"].metrics["accuracy,none"]  # lmms-eval stores this one in percent already
    assert mmt.value == pytest.approx(40.0) and mmt.n == 100
    assert any("normal approximation" in n for n in by_task["mmt_val"].notes)
    assert "first 100 of 1000" in by_task["mmt_val"].data.label
    assert by_task["mmstar"].model == "org/cap"
    # a lmms-eval row for a judged task is not used: its numbers come from the judged record
    body2 = lmms_results("org/cap", {"mmstar": 50.0}, T0)
    body2["results"]["mis_hard"] = {"alias": "mis_hard", "ASR,none": 12.0}
    body2["configs"]["mis_hard"] = {"task": "mis_hard"}
    write_lmms_results(tmp_path / "r2", body2)
    assert {e.task for e in load_results(tmp_path / "r2", load_spec()).entries} == {"mmstar"}


def test_reported_rows_are_marked_and_optional(tmp_path: Path) -> None:
    res = tmp_path / "results"
    write_mis(res, "mine", "mis_hard", 30.0, T0)
    built = build(Options(res, tmp_path / "out"))
    gpt = next(r for r in built.table.rows if r.model == "GPT-4o")
    assert gpt.origin == "reported"
    hard_asr = [i for i, c in enumerate(built.table.columns) if c.task == "mis_hard" and c.metric == "ASR"]
    (mine,) = [r for r in built.table.rows if r.model == "mine"]
    (keyword_col,) = [i for i in hard_asr if i in mine.cells]
    (reported_col,) = [i for i in hard_asr if i in gpt.cells]
    assert keyword_col != reported_col  # the keyword judge is not the paper's: no shared column
    assert gpt.cells[reported_col].metric.value == 65.29
    assert gpt.cells[reported_col].entry.judge.label == "reported"
    assert built.table.summary_conflicts["MIS ASR"]  # reported (paper's judge) next to our keyword judge
    none = build(Options(res, tmp_path / "out2", reported=False))
    assert all(r.origin == "measured" for r in none.table.rows)


def test_bad_files_are_listed_not_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = tmp_path / "results"
    write_mis(res, "ok", "mis_hard", 30.0, T0)
    (res / "broken.json").write_text("{not json")
    bad = json.loads(next(res.rglob("mis_hard*.json")).read_text())
    del bad["metrics"]
    (res / "ok" / "bad_record.json").write_text(json.dumps(bad))
    (res / "notes.json").write_text(json.dumps({"something": "else"}))
    built = build(Options(res, tmp_path / "out"))
    assert len(built.loaded.problems) == 2
    assert any("broken.json" in p and "malformed JSON" in p for p in built.loaded.problems)
    assert any("bad_record.json" in p and "malformed run record" in p for p in built.loaded.problems)
    assert built.loaded.ignored == ["notes.json"]
    assert "bad_record.json" in built.files["html"].read_text()
    assert main(["leaderboard", "--results", str(res), "--out", str(tmp_path / "o")]) == 0
    assert main(["leaderboard", "--results", str(res), "--out", str(tmp_path / "o"), "--strict"]) == 2
    assert "broken.json" in capsys.readouterr().err
    assert main(["leaderboard", "--results", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2


PAYLOAD = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>|=cmd"


def test_everything_from_a_run_is_escaped(tmp_path: Path) -> None:
    res = tmp_path / "results"
    write_mis(res, PAYLOAD, "mis_hard", 30.0, T0)
    write_mis(res, '=HYPERLINK("http://x")', "mis_hard", 31.0, T0)
    built = build(Options(res, tmp_path / "out", reported=False))
    html = built.files["html"].read_text()
    assert "<script>document.title" not in html and "<img src=x" not in html
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # ours only, allowed by the page's CSP hash
    md = built.files["md"].read_text()
    assert "<script>" not in md and "&lt;script&gt;" in md and "\\|=cmd" in md
    with built.files["csv"].open() as f:
        models = [r["model"] for r in csv.DictReader(f)]
    assert '\'=HYPERLINK("http://x")' in models and PAYLOAD in models


def test_spec_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "spec.yaml"
    bad.write_text("metrics:\n  - {match: ASR, better: sideways}\n")
    with pytest.raises(ValueError, match=r"spec\.yaml: metrics\[0\]"):
        load_spec(bad)
    bad.write_text("tasks:\n  - {kind: safety}\n")
    with pytest.raises(ValueError, match=r"spec\.yaml: malformed"):
        load_spec(bad)


def test_lmms_eval_dates_are_local_time_of_its_timezone() -> None:
    from mis_eval.leaderboard.entries import parse_time

    assert parse_time("20250601_080000") == T0 + timedelta(hours=0)  # 08:00 in Singapore = 00:00 UTC
    assert parse_time("20250601_000000", "UTC") == T0
    assert parse_time("2025-06-01T00:00:00+00:00") == T0


def test_sort_by_a_task_metric_and_no_secret_in_judge_legend(tmp_path: Path) -> None:
    res = tmp_path / "results"
    leaky = replace(GPT4O_JUDGE, settings={"temperature": 0.0, "api_key": "sk-LEAK"})
    write_mis(res, "low", "mis_hard", 10.0, T0, judge=leaky)
    write_mis(res, "high", "mis_hard", 70.0, T0, judge=leaky)
    by_name = build(Options(res, tmp_path / "out", reported=False, sort="Capability avg"))
    assert [r.model for r in by_name.table.rows] == ["high", "low"]  # no values: by name
    built = build(Options(res, tmp_path / "out", reported=False, sort="mis_hard/ASR"))
    assert [r.model for r in built.table.rows] == ["low", "high"]  # ASR: lower is better, first
    for path in built.files.values():
        if path.suffix in (".html", ".md", ".csv"):
            assert "sk-LEAK" not in path.read_text()


def test_hardened_and_paper_mode_runs_never_share_a_column(tmp_path: Path) -> None:
    """Hardened mode changes the prompt: its numbers, paper-mode numbers and the reported paper rows
    never sit in one column; reported rows join the paper-mode column only."""
    res = tmp_path / "results"
    paper = replace(GPT4O_JUDGE, id="gpt4o:gpt-4o-2024-08-06", settings={"hardened": False})
    hardened = replace(paper, id="gpt4o:gpt-4o-2024-08-06+hardened", settings={"hardened": True})
    legacy = replace(paper, settings={"delimit_untrusted": True})  # records from before paper mode
    write_mis(res, "a", "mis_hard", 30.0, T0, judge=paper)
    write_mis(res, "b", "mis_hard", 40.0, T0, judge=hardened)
    write_mis(res, "c", "mis_hard", 50.0, T0, judge=legacy)
    built = build(Options(res, tmp_path / "out"))
    cols = {i: c for i, c in enumerate(built.table.columns) if c.task == "mis_hard" and c.metric == "ASR"}
    where = {r.model: [i for i in cols if i in r.cells] for r in built.table.rows}
    assert len({where["a"][0], where["b"][0], where["c"][0]}) == 3
    assert where["GPT-4o"] == where["a"]  # the paper's rows sit with the paper-mode run only
    assert cols[where["a"][0]].judge.paper and not cols[where["b"][0]].judge.paper
    assert not cols[where["c"][0]].judge.paper
    only_hardened = tmp_path / "r2"
    write_mis(only_hardened, "b", "mis_hard", 40.0, T0, judge=hardened)
    built2 = build(Options(only_hardened, tmp_path / "out2"))
    cols2 = [i for i, c in enumerate(built2.table.columns) if c.task == "mis_hard" and c.metric == "ASR"]
    placed = {r.model: [i for i in cols2 if i in r.cells] for r in built2.table.rows}
    assert placed["GPT-4o"] and placed["GPT-4o"] != placed["b"]


def write_incomplete(results: Path, model: str, task: str, asr: float, when: datetime) -> Path:
    """A record as `mis-eval judge` writes it when 60 of 100 verdicts were judge errors."""
    rec = mis_record(model, task, rng(), when)
    rec.metrics["ASR"] = Metric(asr, asr - 5, asr + 5, 40, 60)
    rec.completeness = completeness(Counts(verdicts=100, error=60), max_unusable=0.05)
    assert not rec.complete
    return write_run(rec, [], results)


def test_an_incomplete_record_is_never_ranked_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = tmp_path / "results"
    write_mis(res, "a", "mis_hard", 30.0, T0)  # completeness {}: a record from before the mark
    write_mis(res, "b", "mis_hard", 40.0, T0)
    bad = write_incomplete(res, "b", "mis_hard", 90.0, T0 + timedelta(days=1))  # b's newest
    write_incomplete(res, PAYLOAD, "mis_hard", 95.0, T0)

    built = build(Options(res, tmp_path / "out", reported=False))
    assert cell(built, "a", "mis_hard") == [30.0]
    assert cell(built, "b", "mis_hard") == [40.0]  # b's complete run, not the newer incomplete one
    assert PAYLOAD not in {r.model for r in built.table.rows}
    assert not any("INCOMPLETE" in c.data.label for c in built.table.columns)
    why = "incomplete run: 60 of 100 verdicts unusable (60.0% > max_unusable 5%)"
    left = {e.source: reason for e, reason in built.left_out}
    assert (
        why in left[str(bad.relative_to(res))] and "--include-incomplete" in left[str(bad.relative_to(res))]
    )
    md, html = built.files["md"].read_text(), built.files["html"].read_text()
    assert "## Runs left out of the ranking" in md and md_escape(why) in md
    assert "Runs left out of the ranking" in html and str(escape(why)) in html
    assert "<script>document.title" not in html and "&lt;script&gt;document.title" in html
    assert "<script>" not in md and "&lt;script&gt;" in md

    assert main(["leaderboard", "--results", str(res), "--out", str(tmp_path / "o"), "--no-reported"]) == 0
    out = capsys.readouterr().out
    assert f"note: left out {bad.relative_to(res)} (mis_hard): {why}" in out

    shown = build(Options(res, tmp_path / "out2", reported=False, include_incomplete=True))
    assert not shown.left_out
    hard = [c for c in shown.table.columns if c.task == "mis_hard" and c.metric == "ASR"]
    assert sorted(c.data.label.endswith("INCOMPLETE") for c in hard) == [False, True]
    assert all(c.conflict for c in hard)  # flagged: the same task in two columns, never averaged
    incomplete = next(c for c in hard if c.data.label.endswith("INCOMPLETE"))
    assert cell(shown, "b", "mis_hard") == [90.0] and cell(shown, "a", "mis_hard") == [30.0]
    row_b = next(r for r in shown.table.rows if r.model == "b")
    assert {c.entry.data for c in row_b.cells.values()} == {incomplete.data}  # INCOMPLETE columns only
    assert "includes incomplete runs" in row_b.summaries["MIS ASR"].flag
    assert (
        "INCOMPLETE" in shown.files["md"].read_text() and str(escape(why)) in shown.files["html"].read_text()
    )
