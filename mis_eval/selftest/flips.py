"""Flip report: which items changed Safe/Unsafe between the baseline and this checkpoint.

A rate that moved can hide a judge that flips its mind. With a baseline whose run records
(and per-sample files) still exist, every item judged safe/unsafe in both runs is paired by
task and id; a *regression* is safe -> unsafe, an *improvement* unsafe -> safe. Per task and
per benchmark (the splits of one benchmark pooled), the exact McNemar test
(`mis_eval.core.stats.mcnemar_exact`) says whether regressions outnumber improvements beyond chance.

Judge-noise floor: a flipped item is *within judge noise* when the judge itself is not sure
of it, that is when the panel members disagree on it (in either run), or when re-judging both
answers with the same judge, cache off (`flips.rejudge` passes), does not reproduce both
recorded labels. The test is reported on all flips and on the flips beyond noise; the gate
(`flips.fail_on_regression`) fails on a significant regression beyond noise only.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mis_eval.calibration import LABELS, safety_verdict
from mis_eval.core.record import RunRecord, is_run_record
from mis_eval.core.stats import mcnemar_exact
from mis_eval.records import read_run, read_run_samples, sample_id
from mis_eval.selftest.compare import FAIL, INFO, PASS, Check
from mis_eval.selftest.config import FlipConfig
from mis_eval.viewer.build import sample_anchor

VIEWER_DIR = "viewer"  # next to report.html; flips link into it


@dataclass
class Side:
    """One run's view of an item: its label by the primary judge, members' labels, the row."""

    label: str
    members: list[str]
    row: dict[str, Any]
    model: str


@dataclass
class Flip:
    task: str
    id: str
    direction: str  # regression (safe -> unsafe) | improvement (unsafe -> safe)
    baseline: str
    candidate: str
    noisy: bool = False
    noise: list[str] = field(default_factory=list)  # why it is within judge noise
    anchor: str = ""  # viewer anchor of the candidate's answer
    question: str = ""
    response: str = ""


@dataclass
class Test:
    scope: str  # a task, or "benchmark:<name>"
    paired: int
    regressions: int
    improvements: int
    noisy_regressions: int
    noisy_improvements: int
    p_value: float
    p_beyond_noise: float
    significant_regression: bool


@dataclass
class FlipReport:
    flips: list[Flip]
    tests: list[Test]
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judged_records(paths: Sequence[str | Path]) -> list[tuple[Path, RunRecord]]:
    """The run records (with per-sample files) among a report's files; others are skipped."""
    out = []
    for p in map(Path, paths):
        if p.suffix != ".json" or not p.is_file():
            continue
        try:
            if not is_run_record(json.loads(p.read_text(encoding="utf-8"))):
                continue
        except (OSError, ValueError, AttributeError):
            continue
        rec = read_run(p)
        if rec.samples_file and p.with_name(rec.samples_file).is_file():
            out.append((p, rec))
    return out


def _label(verdicts: Mapping[str, Any]) -> str | None:
    v = safety_verdict(verdicts)
    return str(v["label"]) if v and v.get("status") == "ok" and v.get("label") in LABELS else None


def sides(records: Sequence[tuple[Path, RunRecord]]) -> dict[tuple[str, str], Side]:
    """(task, id) -> the item as the primary judge (a panel's majority, else the judge) saw it."""
    by_task: dict[str, list[tuple[Path, RunRecord]]] = defaultdict(list)
    for p, r in records:
        by_task[r.task.name].append((p, r))
    out = {}
    for task, recs in by_task.items():
        panel = [pr for pr in recs if pr[1].judge.provider == "panel"]
        members = [pr for pr in recs if pr[1].judge.provider != "panel"]
        primary = (panel or members)[0]
        member_rows = (
            [{sample_id(r): r for r in read_run_samples(p, rec)} for p, rec in members] if panel else []
        )
        for row in read_run_samples(*primary):
            sid = sample_id(row)
            label = _label(row.get("verdicts") or {})
            if label is None:
                continue
            votes = [_label(m[sid].get("verdicts") or {}) for m in member_rows if sid in m]
            out[(task, sid)] = Side(label, [v or "failed" for v in votes], row, primary[1].model.name)
    return out


def _rejudge(
    flips: list[Flip],
    base: Mapping[tuple[str, str], Side],
    cand: Mapping[tuple[str, str], Side],
    judge: str,
    passes: int,
) -> list[str]:
    """Re-judge both answers of every flip `passes` times (cache off); unstable ones are noisy."""
    from judges.registry import get_judge, parse_options
    from mis_eval.core.samples import Sample
    from mis_eval.judging import split_spec
    from mis_tasks.judging import judge_samples
    from mis_tasks.registry import benchmark_for_task

    name, options = split_spec(judge)
    opts = parse_options(options)
    try:
        j = get_judge(name, **(opts | {"cache": "off"}))
        notes = []
    except (TypeError, ValueError):  # a judge without a cache (keyword) takes no cache option
        j = get_judge(name, **opts)
        notes = [f"re-judged with {name} as configured (it takes no cache option)"]
    by_task: dict[str, list[tuple[Flip, str, Side]]] = defaultdict(list)
    for f in flips:
        for which, side in (("baseline", base[(f.task, f.id)]), ("candidate", cand[(f.task, f.id)])):
            by_task[f.task].append((f, which, side))
    for task, items in by_task.items():
        bench = benchmark_for_task(task)
        samples = [
            Sample(task, int(s.row.get("doc_id") or 0), dict(s.row.get("doc") or {}), s.row.get("response"))
            for _, _, s in items
        ]
        for _ in range(passes):
            verdicts, _supports = judge_samples(bench, samples, j, progress=False)
            for (f, which, side), per in zip(items, verdicts, strict=True):
                again = _label({k: v.to_dict() for k, v in per.items()})
                if again != side.label:
                    reason = f"re-judged {which} answer: {again or 'failed'} (recorded {side.label})"
                    if reason not in f.noise:
                        f.noise.append(reason)
                        f.noisy = True
    return notes


def _test(scope: str, paired: int, flips: Sequence[Flip], alpha: float) -> Test:
    b = sum(f.direction == "regression" for f in flips)
    c = len(flips) - b
    nb = sum(f.direction == "regression" and f.noisy for f in flips)
    nc = sum(f.direction == "improvement" and f.noisy for f in flips)
    p_clean = mcnemar_exact(b - nb, c - nc)
    return Test(
        scope, paired, b, c, nb, nc, mcnemar_exact(b, c), p_clean, p_clean < alpha and b - nb > c - nc
    )


def flip_report(
    baseline_records: Sequence[tuple[Path, RunRecord]],
    candidate_records: Sequence[tuple[Path, RunRecord]],
    config: FlipConfig,
    *,
    judge: str | None = None,
) -> FlipReport:
    from mis_tasks.registry import benchmark_for_task

    base, cand = sides(baseline_records), sides(candidate_records)
    paired = sorted(set(base) & set(cand))
    flips = []
    for key in paired:
        b, c = base[key], cand[key]
        if b.label == c.label:
            continue
        row = c.row
        f = Flip(
            task=key[0],
            id=key[1],
            direction="regression" if c.label == "unsafe" else "improvement",
            baseline=b.label,
            candidate=c.label,
            anchor=sample_anchor(c.model, key[0], key[1], row.get("response")),
            question=str((row.get("doc") or {}).get("question") or "")[:300],
            response=str(row.get("response") or "")[:300],
        )
        for which, side in (("baseline", b), ("candidate", c)):
            if len(set(side.members)) > 1:
                f.noisy = True
                f.noise.append(f"panel split in the {which} run: {', '.join(side.members)}")
        flips.append(f)
    notes = []
    if flips and judge and config.rejudge > 0:
        notes += _rejudge(flips, base, cand, judge, config.rejudge)
    tests = []
    tasks = sorted({t for t, _ in paired})
    benches: dict[str, list[str]] = defaultdict(list)
    for t in tasks:
        tests.append(
            _test(t, sum(k[0] == t for k in paired), [f for f in flips if f.task == t], config.alpha)
        )
        benches[benchmark_for_task(t).name].append(t)
    for bench, ts in sorted(benches.items()):
        n = sum(k[0] in ts for k in paired)
        tests.append(_test(f"benchmark:{bench}", n, [f for f in flips if f.task in ts], config.alpha))
    return FlipReport(flips, tests, notes, asdict(config))


def flip_checks(report: FlipReport, config: FlipConfig) -> list[Check]:
    """One check per benchmark: fail on a significant regression beyond noise when configured."""
    checks = []
    for t in report.tests:
        if not t.scope.startswith("benchmark:"):
            continue
        beyond = f"{t.regressions - t.noisy_regressions} vs {t.improvements - t.noisy_improvements}"
        msg = (
            f"{t.regressions} safe→unsafe, {t.improvements} unsafe→safe of {t.paired} paired items "
            f"({t.noisy_regressions + t.noisy_improvements} within judge noise); "
            f"exact McNemar p={t.p_value:.3g}, "
            f"beyond noise ({beyond}) p={t.p_beyond_noise:.3g}"
        )
        if t.significant_regression:
            status = FAIL if config.fail_on_regression else INFO
            msg = f"significant regression (alpha {config.alpha:g}): " + msg
        else:
            status = PASS if config.fail_on_regression else INFO
        checks.append(Check(t.scope.split(":", 1)[1], "flips", status, msg))
    return checks
