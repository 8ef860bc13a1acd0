"""Plain-text rate tables for the terminal (the leaderboard does HTML/CSV/Markdown)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mis_eval.records import Metric, RunRecord


def cell(m: Metric | None) -> str:
    if m is None or m.value is None:
        return "n/a"
    if m.ci_low is None or m.ci_high is None:
        return f"{m.value:.1f}"
    return f"{m.value:.1f} [{m.ci_low:.1f}, {m.ci_high:.1f}]"


def overall_table(records: Sequence[RunRecord]) -> str:
    rows = []
    for r in records:
        row = {"model": r.model.get("name"), "task": r.task["name"], "judge": r.judge.get("id")}
        row |= {k: cell(m) for k, m in r.metrics.items()}
        row |= {
            "n": r.counts.get("samples", 0),
            "judge errors": r.counts.get("error", 0) + r.counts.get("unparseable", 0),
        }
        rows.append(row)
    return pd.DataFrame(rows).to_string(index=False)


def breakdown_table(record: RunRecord, by: str = "category") -> str:
    rows = [
        {
            by: part["group"],
            **{k: cell(Metric(**m) if isinstance(m, dict) else m) for k, m in part["metrics"].items()},
        }
        for part in record.breakdown
        if part["by"] == by
    ]
    return pd.DataFrame(rows).to_string(index=False) if rows else ""


def summary(records: Sequence[RunRecord]) -> str:
    parts = [
        "Rates in % with 95% CI (its method: ci_method in the run record; judge errors excluded, counted):",
        overall_table(records),
    ]
    for r in records:
        table = breakdown_table(r)
        if table:
            parts += ["", f"{r.task['name']} by category:", table]
    notes = sorted({n for r in records for n in r.notes})
    if notes:
        parts += ["", *(f"note: {n}" for n in notes)]
    return "\n".join(parts)


def agreement_table(record: RunRecord) -> str:
    rows = [
        {
            "rubric": a["rubric"] + ("+perception" if a.get("with_perception") else ""),
            "judges": " vs ".join(a["judges"]),
            "n": a["n"],
            "excluded": a["excluded"],
            "agreement %": "n/a" if a["percent_agreement"] is None else f"{a['percent_agreement']:.1f}",
            "kappa": "n/a" if a["cohen_kappa"] is None else f"{a['cohen_kappa']:.3f}",
        }
        for a in record.agreement
    ]
    return f"Judge agreement ({record.task['name']}):\n" + pd.DataFrame(rows).to_string(index=False)
