"""Plain-text rate tables for the terminal (the leaderboard does HTML/CSV/Markdown).

Names (model, task, judge, groups) are shown with bidi controls neutralised (mis_eval/display.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mis_eval.core.record import Metric, RunRecord
from mis_eval.display import neutralise_bidi


def cell(m: Metric | None) -> str:
    if m is None or m.value is None:
        return "n/a"
    if m.ci_low is None or m.ci_high is None:
        return f"{m.value:.1f}"
    return f"{m.value:.1f} [{m.ci_low:.1f}, {m.ci_high:.1f}]"


def name(value: object) -> str:
    return neutralise_bidi(str(value))


def denominator(metrics: dict[str, Metric]) -> str:
    """The rates' n (usable verdicts), one number when all rates share it, else one per rate."""
    ns = {k: m.n for k, m in metrics.items() if m.value is not None}
    if len(set(ns.values())) <= 1:
        return str(next(iter(ns.values()), 0))
    return " ".join(f"{k}:{n}" for k, n in ns.items())


def overall_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per record: names, rates, n (usable verdicts), samples, judge errors, status."""
    rows = []
    for r in records:
        row: dict[str, object] = {
            "model": name(r.model.name),
            "task": name(r.task.name),
            "judge": name(r.judge.id),
        }
        row |= {k: cell(m) for k, m in r.metrics.items()}
        row |= {
            "n": denominator(r.metrics),
            "samples": r.counts.samples,
            "judge errors": r.counts.error + r.counts.unparseable,
        }
        if not r.complete:
            row["status"] = "INCOMPLETE"
        rows.append(row)
    return pd.DataFrame(rows)


def overall_table(records: Sequence[RunRecord]) -> str:
    """The frame as text; a rate a record does not have (MIR-SafetyBench has no RSR) shows as "–"."""
    return overall_frame(records).fillna("–").to_string(index=False)


def breakdown_table(record: RunRecord, by: str = "category") -> str:
    rows = [
        {
            by: name(part.group),
            **{k: cell(m) for k, m in part.metrics.items()},
        }
        for part in record.breakdown
        if part.by == by
    ]
    return pd.DataFrame(rows).to_string(index=False) if rows else ""


def summary(records: Sequence[RunRecord]) -> str:
    parts = [
        "Rates in % with 95% CI (its method: ci_method in the run record); n = usable verdicts "
        "(the rates' denominator); judge errors are excluded and counted:",
        overall_table(records),
    ]
    for r in records:
        table = breakdown_table(r)
        if table:
            parts += ["", f"{name(r.task.name)} by category:", table]
    notes = sorted({n for r in records for n in r.notes})
    if notes:
        parts += ["", *(f"note: {name(n)}" for n in notes)]
    return "\n".join(parts)


def agreement_table(record: RunRecord) -> str:
    rows = [
        {
            "rubric": a.rubric + ("+perception" if a.with_perception else ""),
            "judges": name(" vs ".join(a.judges)),
            "n": a.n,
            "excluded": a.excluded,
            "agreement %": "n/a" if a.percent_agreement is None else f"{a.percent_agreement:.1f}",
            "kappa": "n/a" if a.cohen_kappa is None else f"{a.cohen_kappa:.3f}",
        }
        for a in record.agreement
    ]
    return f"Judge agreement ({name(record.task.name)}):\n" + pd.DataFrame(rows).to_string(index=False)
