"""The safety-versus-capability picture (PNG bytes, matplotlib Agg, no display needed).

Left: one point per model that has both summaries (hollow when a summary is partial).
Right: the safety summary for every model, so models without a capability run, and the
reported rows, are still pictured. Model names are drawn as plain text (no mathtext).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mis_eval.display import neutralise_bidi  # noqa: E402
from mis_eval.leaderboard.table import Row, SummaryCell, Table  # noqa: E402

MAX_LABEL = 28


def _short(name: str) -> str:
    name = neutralise_bidi(name)
    return name if len(name) <= MAX_LABEL else "…" + name[-(MAX_LABEL - 1) :]  # the end tells paths apart


def _value(row: Row, name: str) -> SummaryCell | None:
    cell = row.summaries.get(name)
    return cell if cell is not None and cell.value is not None else None


def _err(cell: SummaryCell) -> list[list[float]] | None:
    if cell.ci_low is None or cell.ci_high is None or cell.value is None:
        return None
    return [[max(0.0, cell.value - cell.ci_low)], [max(0.0, cell.ci_high - cell.value)]]


def render_png(table: Table, x: str | None, y: str | None) -> bytes | None:
    """None when the spec names no summaries to plot."""
    if not x or not y:
        return None
    y_lower = next((s.better for s in table.summaries if s.name == y), None) == "lower"
    rows_y = [(r, c) for r in table.rows if (c := _value(r, y)) is not None]
    both = [(r, c, cx) for r, c in rows_y if (cx := _value(r, x)) is not None]
    height = max(4.0, 0.26 * len(rows_y) + 1.5)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, height), gridspec_kw={"width_ratios": [3, 2]})
    colors = plt.get_cmap("tab10")
    for i, (row, cy, cx) in enumerate(both):
        color = colors(i % 10)
        partial = bool(cx.flag or cy.flag)
        ax.errorbar(
            cx.value,
            cy.value,
            yerr=_err(cy),
            xerr=_err(cx),
            fmt="o",
            ms=7,
            capsize=3,
            color=color,
            markerfacecolor="none" if partial else color,
        )
        ax.annotate(
            _short(row.model),
            (cx.value or 0.0, cy.value or 0.0),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
            parse_math=False,
        )
    ax.set_xlabel(f"{x} (%, higher is better)")
    ax.set_ylabel(f"{y} (%{', lower is safer: axis inverted' if y_lower else ''})")
    ax.set_title("Safety versus capability", fontsize=11)
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    if y_lower:
        ax.invert_yaxis()
    if not both:
        ax.set_xlim(0, 100)
        ax.set_ylim(*((100, 0) if y_lower else (0, 100)))
        ax.text(
            0.5,
            0.5,
            f"no model has both {x!s} and {y!s}",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=10,
            color="grey",
            parse_math=False,
        )
    ordered = sorted(rows_y, key=lambda rc: rc[1].value or 0.0, reverse=not y_lower)
    labels = [_short(r.model) + (" (reported)" if r.origin == "reported" else "") for r, _ in ordered]
    values = [c.value or 0.0 for _, c in ordered]
    bars = bx.barh(range(len(ordered)), values, color="#4c78a8")
    for pos, (_, c) in enumerate(ordered):
        if (err := _err(c)) is not None:
            bx.errorbar(c.value, pos, xerr=err, fmt="none", ecolor="black", capsize=2, lw=1)
    for bar, (row, _) in zip(bars, ordered, strict=True):
        if row.origin == "reported":
            bar.set_color("#bbbbbb")
    bx.set_yticks(range(len(ordered)))
    bx.set_yticklabels(labels, fontsize=8)
    for t in bx.get_yticklabels():
        t.set_parse_math(False)
    bx.invert_yaxis()
    bx.set_xlabel(f"{y} (%)")
    bx.set_title(f"{y} per model (grey: reported)", fontsize=11)
    bx.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
