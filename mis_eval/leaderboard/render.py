"""Writers: leaderboard.md, leaderboard.csv (wide), leaderboard_cells.csv (one row per number), index.html.

Everything that comes from a run (model names, judge ids, notes, file names) is escaped
for its format: HTML by jinja2 autoescape (plus a CSP that only allows our own script),
Markdown by entity/backslash escaping, CSV against formula injection; in all of them bidi
control characters are neutralised (mis_eval/display.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mis_eval.core.files import atomic_write
from mis_eval.display import html_environment, neutralise_bidi
from mis_eval.leaderboard.table import Cell, Column, SummaryCell, Table

HERE = Path(__file__).parent
ARROW = {"lower": "↓", "higher": "↑"}


def fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def ci_text(lo: float | None, hi: float | None) -> str:
    return "" if lo is None or hi is None else f"[{lo:.1f}, {hi:.1f}]"


@dataclass
class View:
    """What both the Markdown and the HTML page show, as plain (unescaped) strings."""

    title: str
    generated: str
    results_dir: str
    n_runs: int
    selection: str
    headers: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    judges: list[dict[str, str]] = field(default_factory=list)
    data: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # runs kept off the table (limited, incomplete), why
    # the multi-image attribution section (mis_eval.attribution): groups as attribution.report.view_group
    # gives them, the same section as Markdown lines (already escaped), and how to read it
    attribution: list[dict[str, Any]] = field(default_factory=list)
    attribution_md: list[str] = field(default_factory=list)
    attribution_note: str = ""
    attribution_messages: list[str] = field(default_factory=list)  # variant runs not paired, and why


def _column_header(t: Table, c: Column) -> dict[str, Any]:
    conflict = (
        (
            f"{c.task} {c.label} was also measured with another judge or data version: "
            "separate columns, never averaged"
        )
        if c.conflict
        else ""
    )
    return {
        "group": c.group,
        "label": c.label,
        "arrow": ARROW.get(c.better or "", ""),
        "better": c.better or "",
        "refs": f"{t.judge_ref(c.judge)}·{t.data_ref(c.data)}",
        "conflict": conflict,
        "cls": c.kind,
        "title": f"{c.task} / {c.metric}; judge: {c.judge.label}; data: {c.data.label}",
    }


def _cell(t: Table, cell: Cell | None) -> dict[str, Any]:
    if cell is None:
        return {"text": "", "value": "", "ci": "", "flag": "", "title": "no run", "cls": ""}
    m, e = cell.metric, cell.entry
    title = (
        f"judge {t.judge_ref(e.judge)}: {e.judge.label}; data {t.data_ref(e.data)}: {e.data.label}; "
        f"n={m.n}, excluded={m.n_excluded}; run: {e.run_id or e.source}; finished {e.when}"
    )
    if m.ci_method:
        title += f"; CI: {m.ci_method}"
    if m.value is None:
        title = f"not measured: this judge gives no verdict for {cell.entry.task} / this metric; " + title
    if e.origin == "reported":
        title = f"reported: {e.judge.detail}; {e.data.detail}; source: {e.source}"
    flag = "; ".join(n for n in e.notes if n.startswith(("limited", "incomplete", "CI:")))
    return {
        "text": fmt(m.value),
        "value": "" if m.value is None else repr(float(m.value)),
        "ci": ci_text(m.ci_low, m.ci_high),
        "flag": flag,
        "title": title,
        "cls": "",
    }


def _summary_cell(t: Table, s: SummaryCell | None) -> dict[str, Any]:
    if s is None:
        return {"text": "", "value": "", "ci": "", "flag": "", "title": "no run", "cls": "summary"}
    judges = ", ".join(f"{t.judge_ref(j) if j in t.judges else '?'} {j.label}" for j in s.judges)
    return {
        "text": fmt(s.value),
        "value": "" if s.value is None else repr(float(s.value)),
        "ci": ci_text(s.ci_low, s.ci_high),
        "flag": s.flag,
        "cls": "summary",
        "title": f"{s.parts} of {s.of} tasks; judges: {judges}",
    }


def build_view(
    t: Table,
    *,
    results_dir: str,
    generated: str,
    n_runs: int,
    selection: str,
    problems: list[str],
    not_plotted: list[str],
    left_out: Sequence[str] = (),
) -> View:
    v = View(
        "MIS-eval leaderboard: safety next to capability",
        generated,
        results_dir,
        n_runs,
        selection,
        problems=problems,
        left_out=list(left_out),
    )
    for s in t.summaries:
        conflict = (
            "rows in this column come from different judges: compare with care"
            if t.summary_conflicts.get(s.name)
            else ""
        )
        v.headers.append(
            {
                "group": "summary",
                "label": s.name,
                "arrow": ARROW.get(s.better or "", ""),
                "better": s.better or "",
                "refs": "",
                "conflict": conflict,
                "cls": "summary",
                "title": f"{s.name}: per-model mean",
            }
        )
    v.headers += [_column_header(t, c) for c in t.columns]
    for r in t.rows:
        cells = [_summary_cell(t, r.summaries.get(s.name)) for s in t.summaries]
        cells += [_cell(t, r.cells.get(i)) for i in range(len(t.columns))]
        v.rows.append({"model": r.model, "origin": r.origin, "cells": cells})
    v.judges = [{"ref": t.judge_ref(k), "label": k.label, "detail": k.detail} for k in t.judges]
    v.data = [{"ref": t.data_ref(k), "label": k.label, "detail": k.detail} for k in t.data]
    v.notes = [
        "Numbers are percentages; [a, b] is the 95% confidence interval (for judged runs exact "
        "Clopper-Pearson, on the effective n where items are grouped; hover a number for its method; "
        "lmms-eval's stderr, or a normal approximation marked *, for capability).",
        "↓ lower is better, ↑ higher is better. Jn·Dn name the judge and data version of a column "
        "(legend above).",
        "⚠ marks a task measured with more than one judge or data version: each gets its own column; "
        "such numbers are never averaged together.",
    ]
    for s in t.summaries:
        scope = f"{s.kind} tasks" if s.kind else f"tasks {s.tasks}"
        rule = (
            "left empty when a model's runs used different judges or data versions"
            if s.same_judge
            else "marked * when partial or from limited or incomplete runs"
        )
        v.notes.append(
            f"{s.name}: per-model mean of {s.metric or 'the headline metric'} over {scope}; {rule}."
        )
    if any(r.origin == "reported" for r in t.rows):
        v.notes.append(
            "Rows marked 'reported' are published numbers, not re-measured here; they sit in the "
            "column of runs judged the paper's way (paper's judge, paper mode), else in their own column; "
            "their data is the paper's (see the tooltip)."
        )
    if not_plotted:
        v.notes.append(
            "Not in the scatter plot (no capability run or no safety summary): " + ", ".join(not_plotted)
        )
    return v


def csp_script_hash(script: str) -> str:
    """The CSP source that allows exactly this inline script (and nothing injected next to it)."""
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def write_html(v: View, png: bytes | None, path: Path, attribution_png: bytes | None = None) -> None:
    env = html_environment(HERE)
    script = (HERE / "sort.js").read_text(encoding="utf-8")
    html = env.get_template("leaderboard.html.jinja").render(
        **vars(v),
        script=script,
        script_hash=csp_script_hash(script),
        plot=base64.b64encode(png).decode() if png else None,
        plot_alt="safety versus capability plot",
        attribution_plot=base64.b64encode(attribution_png).decode() if attribution_png else None,
    )
    atomic_write(path, html)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|#])")


def md_escape(text: str) -> str:
    text = neutralise_bidi(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _md_header(h: dict[str, Any]) -> str:
    name = md_escape(h["label"] if h["cls"] == "summary" else f"{h['group']} {h['label']}")
    suffix = "".join(
        [
            f" {h['arrow']}" if h["arrow"] else "",
            f" [{h['refs']}]" if h["refs"] else "",
            " ⚠" if h["conflict"] else "",
        ]
    )
    return name + suffix


def write_markdown(v: View, path: Path, plot_file: str | None, attribution_plot: str | None = None) -> None:
    head = ["Model"] + [_md_header(h) for h in v.headers]
    lines = [
        f"# {md_escape(v.title)}",
        "",
        f"Generated {v.generated} from {v.n_runs} run(s) in {md_escape(v.results_dir)}; {v.selection}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" + "---:|" * (len(head) - 1),
    ]
    for r in v.rows:
        name = md_escape(r["model"]) + (" *(reported)*" if r["origin"] == "reported" else "")
        cells = [
            " ".join(x for x in (c["text"], c["ci"], "\\*" if c["flag"] else "") if x) for c in r["cells"]
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    if plot_file:
        lines += ["", f"![safety versus capability]({plot_file})"]
    if v.attribution_md:
        lines += ["", "## Multi-image attribution", "", md_escape(v.attribution_note)]
        if attribution_plot:
            lines += ["", f"![multi-image attribution]({attribution_plot})"]
        lines += v.attribution_md
    for title, items in (("Judges", v.judges), ("Data versions", v.data)):
        lines += ["", f"## {title}", ""]
        lines += [
            f"- **{i['ref']}** {md_escape(i['label'])}"
            + (f" — {md_escape(i['detail'])}" if i["detail"] else "")
            for i in items
        ]
    lines += ["", "## Notes", ""] + [f"- {md_escape(n)}" for n in v.notes]
    if v.left_out:
        lines += ["", "## Runs left out of the ranking", ""] + [f"- {md_escape(p)}" for p in v.left_out]
    if v.problems:
        lines += ["", "## Files not used", ""] + [f"- {md_escape(p)}" for p in v.problems]
    atomic_write(path, "\n".join(lines) + "\n")


def csv_safe(value: Any) -> Any:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe."""
    if not isinstance(value, str):
        return value
    value = neutralise_bidi(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def write_csv(t: Table, wide: Path, long: Path) -> None:
    records, cells = [], []
    for r in t.rows:
        rec: dict[str, Any] = {"model": r.model, "origin": r.origin}
        for s in t.summaries:
            sc = r.summaries.get(s.name)
            rec[s.name] = sc.value if sc else None
            rec[f"{s.name} flag"] = sc.flag if sc else ""
        for i, c in enumerate(t.columns):
            name = f"{c.task}/{c.label} | judge: {c.judge.label} | data: {c.data.label}"
            cell = r.cells.get(i)
            m = cell.metric if cell else None
            rec[name] = m.value if m else None
            rec[f"{name} | ci_low"] = m.ci_low if m else None
            rec[f"{name} | ci_high"] = m.ci_high if m else None
            if cell:
                e = cell.entry
                cells.append(
                    {
                        "model": r.model,
                        "origin": e.origin,
                        "task": c.task,
                        "metric": c.metric,
                        "value": m.value if m else None,
                        "ci_low": m.ci_low if m else None,
                        "ci_high": m.ci_high if m else None,
                        "ci_method": m.ci_method if m else None,
                        "n": m.n if m else None,
                        "n_excluded": m.n_excluded if m else None,
                        "judge": e.judge.label,
                        "judge_detail": e.judge.detail,
                        "data": e.data.label,
                        "finished_at": e.when,
                        "run": e.run_id or e.source,
                        "column_judge": c.judge.label,
                    }
                )
        records.append(rec)
    for frame, path in ((pd.DataFrame(records), wide), (pd.DataFrame(cells), long)):
        frame = frame.map(csv_safe)
        frame.columns = [csv_safe(str(c)) for c in frame.columns]
        atomic_write(path, frame.to_csv(index=False))
