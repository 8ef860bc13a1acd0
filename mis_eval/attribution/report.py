"""Attribution tables as Markdown and CSV (model names and judge ids escaped for each format)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mis_eval.attribution.analysis import OVERALL, Result
from mis_eval.attribution.measures import RATES, Paired
from mis_eval.leaderboard.render import csv_safe, md_escape
from mis_eval.records import Metric
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


def _paired_row(p: Paired) -> str:
    ci = f"[{p.ci_low:.1f}, {p.ci_high:.1f}]" if p.ci_low is not None and p.ci_high is not None else "–"
    cells = [md_escape(p.name), _num(p.value), ci, str(p.n), f"{p.b} / {p.c}", _p(p.p), md_escape(p.detail)]
    return "| " + " | ".join(cells) + " |"


def result_markdown(r: Result) -> list[str]:
    g, top = r.group, r.overall
    lines = [
        f"## {md_escape(g.model)} · mis\\_{md_escape(g.split)}",
        "",
        f"Judge: {md_escape(g.judge.label)} ({md_escape(g.judge.detail)}); data: {md_escape(g.data.label)}. "
        f"Paired over {top.n_items} item(s); runs: "
        + ", ".join(md_escape(run.record.run_id or str(run.path)) for run in g.runs.values())
        + ".",
        "",
        "| variant | model sees | " + " | ".join(RATES) + " | n | excluded |",
        "|---|---|" + "---:|" * (len(RATES) + 2),
    ]
    for v in top.variants:
        asr = v.rates["ASR"]
        cells = [v.variant, VARIANTS[v.variant].shown, *(_rate(v.rates[k]) for k in RATES)]
        lines.append("| " + " | ".join([*cells, str(asr.n), str(asr.n_excluded)]) + " |")
    lines += [
        "",
        "| paired measure | pp | 95% CI | n | discordant b / c | McNemar p | what |",
        "|---|---:|---:|---:|---:|---:|---|",
        *(_paired_row(p) for p in top.paired),
    ]
    cats = r.scopes[1:]
    if cats:
        present = [v.variant for v in top.variants]
        measures = [p.name for p in top.paired if p.name in ("uplift", "order sensitivity")]
        head = ["category", "n", *(f"ASR {v}" for v in present), *measures]
        lines += ["", "By category:", "", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for s in cats:
            cells = [md_escape(s.name), str(s.n_items), *(_num(s.asr(v)) for v in present)]
            cells += [_num(m.value) if (m := s.measure(name)) else "–" for name in measures]
            lines.append("| " + " | ".join(cells) + " |")
    if r.notes:
        lines += ["", *(f"- {md_escape(n)}" for n in r.notes)]
    return lines


HOW_TO_READ = (
    "ASR/RSR/RR/HR per variant in % [95% bootstrap CI]. Paired measures in percentage points over the "
    "items usable in every condition: uplift = ASR(both) − max(ASR(first), ASR(second)) (> 0: the "
    "combination makes answers unsafe; < 0: the model is safer when it sees both images); order "
    "sensitivity = share of items whose Safe/Unsafe label changes when the images are swapped; "
    "ASR(none) is the text-only baseline. Intervals: seeded bootstrap over items; p: exact McNemar on "
    f"the discordant pairs. The judge saw {JUDGE_SEES} in every variant."
)


def markdown(results: Sequence[Result], messages: Sequence[str] = ()) -> str:
    lines = ["# Multi-image attribution", "", md_escape(HOW_TO_READ)]
    for r in results:
        lines += ["", *result_markdown(r)]
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
    frame.to_csv(path, index=False)
