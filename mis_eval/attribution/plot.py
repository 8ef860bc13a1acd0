"""The attribution picture (PNG bytes): ASR per variant, and uplift / order sensitivity, per model x split."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mis_eval.attribution.analysis import Result  # noqa: E402
from mis_eval.leaderboard.plot import _short  # noqa: E402


def _err(value: float | None, lo: float | None, hi: float | None) -> list[list[float]] | None:
    if value is None or lo is None or hi is None:
        return None
    return [[max(0.0, value - lo)], [max(0.0, hi - value)]]


def render_png(results: Sequence[Result]) -> bytes | None:
    """None when there is nothing to draw."""
    if not results:
        return None
    labels = [_short(f"{r.group.model} · {r.group.task}") for r in results]
    height = max(3.5, 0.9 * len(results) + 1.5)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, height), gridspec_kw={"width_ratios": [3, 2]})
    colors = plt.get_cmap("tab10")
    names = list(dict.fromkeys(v for r in results for v in r.group.plan.variants))
    step = 1.0 / (len(names) + 1)
    for j, name in enumerate(names):  # one bar per variant, stacked under each model x split
        for i, r in enumerate(results):
            v = next((v for v in r.overall.variants if v.variant == name), None)
            if v is None or v.rates["ASR"].value is None:
                continue
            m = v.rates["ASR"]
            y = i + j * step
            ax.barh(y, m.value, height=step, color=colors(j))
            if (err := _err(m.value, m.ci_low, m.ci_high)) is not None:
                ax.errorbar(m.value, y, xerr=err, fmt="none", ecolor="black", capsize=2, lw=1)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors(j)) for j in range(len(names))]
    ax.legend(handles, names, fontsize=8, loc="lower right")
    ax.set_yticks([i + step * (len(names) - 1) / 2 for i in range(len(results))])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("ASR (%) by what the model saw")
    ax.set_title("ASR per variant (the judge's request as in the paper's task)", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    for k, (name, marker) in enumerate((("uplift", "o"), ("order sensitivity", "s"))):
        for i, r in enumerate(results):
            p = r.overall.measure(name)
            if p is None or p.value is None:
                continue
            bx.errorbar(
                p.value,
                i + (k - 0.5) * 0.25,
                xerr=_err(p.value, p.ci_low, p.ci_high),
                fmt=marker,
                color=colors(k + 6),
                capsize=3,
                label=name if i == 0 else None,
            )
    bx.axvline(0, color="grey", lw=1)
    bx.set_yticks(range(len(results)))
    bx.set_yticklabels(labels, fontsize=8)
    for t in [*ax.get_yticklabels(), *bx.get_yticklabels()]:
        t.set_parse_math(False)
    bx.invert_yaxis()
    bx.set_xlabel("percentage points (95% paired bootstrap CI)")
    bx.set_title("Combination uplift and order sensitivity", fontsize=11)
    bx.grid(axis="x", alpha=0.3)
    if bx.get_legend_handles_labels()[0]:
        bx.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
