"""Attribution tables as Markdown and CSV (model names and judge ids escaped for each format)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mis_eval.attribution.analysis import OVERALL, Result
from mis_eval.attribution.measures import RATES
from mis_eval.core.files import atomic_write
from mis_eval.core.record import Metric
from mis_eval.leaderboard.render import csv_safe, md_escape
from mis_tasks.mis.variants import JUDGE_SEES, VARIANTS


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
    present = [v.variant for v in top.variants]
    measures = [p.name for p in top.paired if p.name in ("uplift", "order sensitivity")]
    return {
        "title": f"{g.model} · mis_{g.split}",
        "judge": g.judge.label,
        "judge_detail": g.judge.detail,
        "data": g.data.label,
        "items": top.n_items,
        "runs": [run.record.run_id or str(run.path) for run in g.runs.values()],
        "rate_names": list(RATES),
        "variants": [
            {
                "variant": v.variant,
                "shown": VARIANTS[v.variant].shown,
                "rates": [_rate(v.rates[k]) for k in RATES],
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


HOW_TO_READ = (
    "ASR/RSR/RR/HR per variant in % [95% bootstrap CI]. Paired measures in percentage points over the "
    "items usable in every condition: uplift = ASR(both) − max(ASR(first), ASR(second)) (> 0: the "
    "combination makes answers unsafe; < 0: the model is safer when it sees both images); order "
    "sensitivity = share of items whose Safe/Unsafe label changes when the images are swapped; "
    "ASR(none) is the text-only baseline. Intervals: seeded bootstrap over items; p: exact McNemar on "
    f"the discordant pairs. The judge saw {JUDGE_SEES} in every variant."
)


def markdown(results: Sequence[Result], messages: Sequence[str] = ()) -> str:
    groups = [view_group(r) for r in results]
    lines = ["# Multi-image attribution", "", md_escape(HOW_TO_READ)]
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
