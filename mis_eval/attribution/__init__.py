"""Multi-image attribution: is the harm really in the combination (or relation) of the images?

    report = analyse_results(["results"])     # pair the variant runs, item by item
    write_outputs(report, "attribution")      # attribution.md, attribution.csv, attribution.png

Reads run records of every benchmark with an attribution design (mis_tasks.registry): `mis_<split>`
and its variants (`_first`, `_second`, `_none`, `_swapped`; mis_tasks/mis/variants.py), and
`mir_<relation>` with `_single`, `_none`, `_reversed` (mis_tasks/mir_safetybench/variants.py).
Groups them per benchmark x model x split x judge x data version (never pairing across judges or
data versions), and computes per-variant rates, combination uplift, the text-only baseline and
order sensitivity with paired bootstrap intervals and exact McNemar tests, overall and per category.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mis_eval.attribution.analysis import Result, analyse
from mis_eval.attribution.load import load_groups
from mis_eval.attribution.measures import RESAMPLES
from mis_eval.attribution.plot import render_png
from mis_eval.attribution.report import markdown, write_csv
from mis_eval.core.files import atomic_write
from mis_eval.core.metrics import SEED
from mis_eval.core.record import Metric, RunRecord
from mis_eval.leaderboard.entries import Entry, parse_time
from mis_tasks.registry import benchmarks

__all__ = ["Report", "analyse_results", "write_outputs", "selftest_entries", "is_variant_run", "PLOT_FILE"]

PLOT_FILE = "attribution.png"
# selftest / leaderboard metric name -> paired measure (thresholds: "mis_hard_attribution/order_sensitivity",
# "mir_analogy_attribution/uplift")
ENTRY_METRICS = {"uplift": "uplift", "order_sensitivity": "order sensitivity"}


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # runs or files not paired, and why


def analyse_results(
    paths: Sequence[Path | str], *, models: Sequence[str] = (), resamples: int = RESAMPLES, seed: int = SEED
) -> Report:
    loaded = load_groups(paths, models)
    results = [analyse(g, resamples=resamples, seed=seed) for g in loaded.groups]
    return Report(results, loaded.messages)


def write_outputs(report: Report, out_dir: Path | str) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"md": out / "attribution.md", "csv": out / "attribution.csv"}
    png = render_png(report.results)
    text = markdown(report.results, report.messages)
    if png:
        files["png"] = out / PLOT_FILE
        atomic_write(files["png"], png)
        text += f"\n![multi-image attribution]({PLOT_FILE})\n"
    atomic_write(files["md"], text)
    write_csv(report.results, files["csv"])
    return files


def is_variant_run(record: RunRecord) -> bool:
    """Whether a run record is an attribution variant (not its benchmark's paper task)."""
    bench = benchmarks().get(record.task.benchmark)
    design = bench.attribution if bench is not None else None
    variant = record.task.extra.get("variant")
    return design is not None and variant is not None and variant != design.default


def selftest_entries(report: Report) -> list[Entry]:
    """One entry per model x split (`mis_<split>_attribution`, `mir_<relation>_attribution`):
    uplift, order_sensitivity, ASR_none.

    Lets a selftest config gate on them like any metric, e.g.
    `"mis_*_attribution/order_sensitivity": {max: 5}`.
    """
    out = []
    for r in report.results:
        design = r.group.plan
        metrics = {}
        for key, name in ENTRY_METRICS.items():
            if (p := r.overall.measure(name)) is not None:
                metrics[key] = Metric(p.value, p.ci_low, p.ci_high, p.n)
        none = next((v for v in r.overall.variants if v.variant == design.none), None)
        if none is not None:
            metrics["ASR_none"] = none.rates["ASR"]
        both = r.group.runs[design.default].record
        out.append(
            Entry(
                model=r.group.model,
                task=f"{r.group.task}_attribution",
                metrics=metrics,
                judge=r.group.judge,
                data=r.group.data,
                origin="mis-eval",
                finished_at=max(parse_time(run.record.finished_at) for run in r.group.runs.values()),
                source=str(r.group.runs[design.default].path),
                run_id=both.run_id,
                notes=list(r.notes),
            )
        )
    return out
