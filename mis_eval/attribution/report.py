"""Attribution tables as Markdown and CSV (model names and judge ids escaped for each format)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mis_eval.attribution.analysis import OVERALL, Result
from mis_eval.core.files import atomic_write
from mis_eval.core.record import Metric
from mis_eval.leaderboard.render import csv_safe, md_escape
from mis_tasks.mis.variants import HOW_TO_READ


def _num(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _rate(m: Metric) -> str:
    if m.value is None:
        return "n/a"
    ci = f" [{m.ci_low:.1f}, {m.ci_high:.1f}]" if m.ci_low is not None and m.ci_high is not None else ""
    return f"{m.value:.1f}{ci}"


def _p(p: float | None) -> str:
    return "–" if p is None else f"{p:.3g}"


def _ci(lo: float | None, hi: float | None) -> str:
    return f"[{lo:.1f}, {hi:.1f}]" if lo is not None and hi is not None else "–"


def view_group(r: Result) -> dict[str, Any]:
    """One group as plain (unescaped) strings, shared by the Markdown and the leaderboard page."""
    g, top = r.group, r.overall
    design = g.plan
    present = [v.variant for v in top.variants]
    measures = [p.name for p in top.paired if p.name in ("uplift", "order sensitivity")]
    return {
        "title": f"{g.model} · {g.task}",
        "judge": g.judge.label,
        "judge_detail": g.judge.detail,
        "data": g.data.label,
        "items": top.n_items,
        "runs": [run.record.run_id or str(run.path) for run in g.runs.values()],
        "rate_names": list(design.rates),
        "variants": [
            {
                "variant": v.variant,
                "shown": design.variants[v.variant],
                "rates": [_rate(v.rates[k]) for k in design.rates],
                "n": str(v.rates["ASR"].n),
                "excluded": str(v.rates["ASR"].n_excluded),
            }
            for v in top.variants
        ],
        "paired": [
            {
                "name": p.name,
                "value": _num(p.value),
                "ci": _ci(p.ci_low, p.ci_high),
                "n": str(p.n),
                "bc": f"{p.b} / {p.c}",
                "p": _p(p.p),
                "detail": p.detail,
            }
            for p in top.paired
        ],
        "category_head": ["category", "n", *(f"ASR {v}" for v in present), *measures],
        "categories": [
            [
                s.name,
                str(s.n_items),
                *(_num(s.asr(v)) for v in present),
                *(_num(m.value) if (m := s.measure(name)) else "–" for name in measures),
            ]
            for s in r.scopes[1:]
        ],
        "notes": list(r.notes),
    }


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(md_escape(c) for c in cells) + " |"


def group_markdown(g: dict[str, Any], level: str = "##") -> list[str]:
    lines = [
        f"{level} {md_escape(g['title'])}",
        "",
        f"Judge: {md_escape(g['judge'])}; data: {md_escape(g['data'])}. Paired over {g['items']} item(s); "
        f"runs: {md_escape(', '.join(g['runs']))}.",
        "",
        _row(["variant", "model sees", *g["rate_names"], "n", "excluded"]),
        "|---|---|" + "---:|" * (len(g["rate_names"]) + 2),
        *(_row([v["variant"], v["shown"], *v["rates"], v["n"], v["excluded"]]) for v in g["variants"]),
        "",
        _row(["paired measure", "pp", "95% CI", "n", "discordant b / c", "McNemar p", "what"]),
        "|---|---:|---:|---:|---:|---:|---|",
        *(_row([p["name"], p["value"], p["ci"], p["n"], p["bc"], p["p"], p["detail"]]) for p in g["paired"]),
    ]
    if g["categories"]:
        head = g["category_head"]
        lines += ["", "By category:", "", _row(head), "|---|" + "---:|" * (len(head) - 1)]
        lines += [_row(c) for c in g["categories"]]
    if g["notes"]:
        lines += ["", *(f"- {md_escape(n)}" for n in g["notes"])]
    return lines


def judges_markdown(groups: Sequence[dict[str, Any]]) -> list[str]:
    judges = dict.fromkeys((g["judge"], g["judge_detail"]) for g in groups)
    return [f"- **{md_escape(j)}**: {md_escape(d)}" for j, d in judges]


def how_to_read(results: Sequence[Result]) -> str:
    """How to read the report: each present benchmark's explanation (MIS's when there is none)."""
    texts = dict.fromkeys(r.group.plan.how_to_read for r in results)
    return " ".join(texts) or HOW_TO_READ


def markdown(results: Sequence[Result], messages: Sequence[str] = ()) -> str:
    groups = [view_group(r) for r in results]
    lines = ["# Multi-image attribution", "", md_escape(how_to_read(results))]
    for g in groups:
        lines += ["", *group_markdown(g)]
    if groups:
        lines += ["", "## Judges", "", *judges_markdown(groups)]
    if messages:
        lines += ["", "## Not paired", "", *(f"- {md_escape(m)}" for m in messages)]
    return "\n".join(lines) + "\n"


def rows(results: Sequence[Result]) -> list[dict[str, Any]]:
    """One row per number: rates per variant and paired measures, overall and per category."""
    out = []
    for r in results:
        g = r.group
        base = {"model": g.model, "split": g.split, "judge": g.judge.label, "data": g.data.label}
        for s in r.scopes:
            scope = {**base, "category": "" if s.name == OVERALL else s.name, "items": s.n_items}
            for v in s.variants:
                for name, m in v.rates.items():
                    out.append(
                        {
                            **scope,
                            "measure": name,
                            "variant": v.variant,
                            "value": m.value,
                            "ci_low": m.ci_low,
                            "ci_high": m.ci_high,
                            "n": m.n,
                            "n_excluded": m.n_excluded,
                        }
                    )
            for p in s.paired:
                out.append(
                    {
                        **scope,
                        "measure": p.name,
                        "variant": "",
                        "value": p.value,
                        "ci_low": p.ci_low,
                        "ci_high": p.ci_high,
                        "n": p.n,
                        "discordant_b": p.b,
                        "discordant_c": p.c,
                        "p_mcnemar": p.p,
                        "detail": p.detail,
                    }
                )
    return out


def write_csv(results: Sequence[Result], path: Path) -> None:
    frame = pd.DataFrame(rows(results)).map(csv_safe)
    atomic_write(path, frame.to_csv(index=False))
