"""Leaderboard: every run record under results/ -> leaderboard.md, .csv and a static index.html.

    build(Options(results_dir="results", out_dir="leaderboard"))

Reads our judged run records and lmms-eval's result JSONs, keeps the newest run per
model x task (unless told otherwise), lays numbers out by (task, metric, judge, data
version) as declared in columns.yaml, and writes the tables, a safety-versus-capability
plot and a sortable, fully escaped HTML page. Runs of the MIS attribution variants get a
section of their own (paired item by item, `mis_eval.attribution`), not columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mis_eval.calibration import CORRECTED
from mis_eval.core.files import atomic_write
from mis_eval.core.record import utc_now
from mis_eval.leaderboard.entries import Entry
from mis_eval.leaderboard.plot import render_png
from mis_eval.leaderboard.render import View, build_view, md_escape, write_csv, write_html, write_markdown
from mis_eval.leaderboard.sources import Loaded, load_results, reported_entries
from mis_eval.leaderboard.spec import Spec, load_spec
from mis_eval.leaderboard.table import Table, build_table, select

__all__ = ["Options", "Built", "build", "load_spec", "load_results", "select", "build_table"]

PLOT_FILE = "safety_vs_capability.png"
ATTRIBUTION_PLOT = "attribution.png"


@dataclass
class Options:
    results_dir: Path | str | Sequence[Path | str] = "results"  # one folder or several
    out_dir: Path | str = "leaderboard"
    spec: Path | str | None = None
    keep: str = "newest"  # or "per-judge": newest per model x task x judge x data version
    pins: Sequence[str] = ()  # run ids or files to use instead of the newest
    models: Sequence[str] = ()  # globs
    tasks: Sequence[str] = ()  # globs
    judge: str | None = None  # keep judged runs whose judge label/detail contains this
    reported: bool = True
    aliases: dict[str, str] = field(default_factory=dict)  # model name as written -> name shown
    sort: str | None = None  # a summary name or "task/metric"
    include_limited: bool = False  # --limit runs: left out (listed) unless asked for, then own columns
    include_incomplete: bool = False  # runs with too many unusable verdicts: the same


@dataclass
class Built:
    files: dict[str, Path]
    table: Table
    loaded: Loaded
    selected: list[Entry]
    left_out: list[tuple[Entry, str]] = field(default_factory=list)  # (run, why): limited / incomplete


def left_out_runs(entries: Sequence[Entry], opts: Options) -> list[tuple[Entry, str]]:
    """Runs kept off the table (limited or incomplete, unless asked for), each with why and how to
    show it: listed on the page and by the command, never ranked beside full, complete runs."""
    out = []
    for e in entries:
        why = []
        if e.limited and not opts.include_limited:
            why.append(f"{e.limited}; left out, never ranked beside full runs (--include-limited shows it)")
        if e.incomplete and not opts.include_incomplete:
            why.append(
                f"{e.incomplete}; left out, never ranked beside complete runs (--include-incomplete shows it)"
            )
        if why:
            out.append((e, "; ".join(why)))
    return out


def add_corrections(chosen: Sequence[Entry], loaded: Loaded) -> None:
    """A calibrated run gets `ASR (corrected)` next to its measured ASR (same judge, same data)."""
    for e in chosen:
        found = loaded.corrections.get(e.run_id) if e.origin == "mis-eval" else None
        if found is not None:
            path, _, metric = found
            e.metrics = {**e.metrics, CORRECTED: metric}
            e.notes = [*e.notes, f"{CORRECTED}: Rogan-Gladen correction for judge error, calibration {path}"]


def build(opts: Options) -> Built:
    spec: Spec = load_spec(opts.spec)
    dirs = (
        [Path(opts.results_dir)]
        if isinstance(opts.results_dir, str | Path)
        else [Path(d) for d in opts.results_dir]
    )
    loaded = Loaded()
    for d in dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"results folder {d} does not exist")
        part = load_results(d, spec)
        loaded.entries += part.entries
        loaded.problems += part.problems
        loaded.ignored += part.ignored
        loaded.corrections.update(part.corrections)
    left_out = left_out_runs(loaded.entries, opts)
    dropped = {id(e) for e, _ in left_out}
    measured = [e for e in loaded.entries if id(e) not in dropped]
    entries = measured + (reported_entries() if opts.reported else [])
    for e in entries:
        e.model = opts.aliases.get(e.model, e.model)
    chosen = select(
        entries, keep=opts.keep, pins=opts.pins, models=opts.models, tasks=opts.tasks, judge=opts.judge
    )
    add_corrections(chosen, loaded)
    shown = [e for e in chosen if spec.rule(e.task).kind != "attribution"]  # paired in their own section
    table = build_table(shown, spec, sort=opts.sort)
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = render_png(table, spec.plot_x, spec.plot_y)
    files = {
        "md": out / "leaderboard.md",
        "csv": out / "leaderboard.csv",
        "cells_csv": out / "leaderboard_cells.csv",
        "html": out / "index.html",
    }
    if png:
        files["png"] = out / PLOT_FILE
        atomic_write(files["png"], png)
    plotted = {
        r.model
        for r in table.rows
        if spec.plot_x
        and spec.plot_y
        and all(r.summaries.get(n) and r.summaries[n].value is not None for n in (spec.plot_x, spec.plot_y))
    }
    not_plotted = sorted({r.model for r in table.rows if r.origin == "measured"} - plotted)
    selection = (
        "newest run per model × task"
        if opts.keep == "newest"
        else "newest run per model × task × judge × data version"
    )
    if opts.pins:
        selection += f", {len(opts.pins)} pinned run(s)"
    view = build_view(
        table,
        results_dir=", ".join(str(d) for d in dirs),
        generated=utc_now(),
        n_runs=sum(e.origin != "reported" for e in chosen),
        selection=selection,
        problems=loaded.problems,
        left_out=[f"{e.source} ({e.model}, {e.task}): {why}" for e, why in left_out],
        not_plotted=not_plotted,
    )
    attribution_png = add_attribution(view, dirs, opts.models)
    if attribution_png:
        files["attribution_png"] = out / ATTRIBUTION_PLOT
        atomic_write(files["attribution_png"], attribution_png)
    plots = (PLOT_FILE if png else None, ATTRIBUTION_PLOT if attribution_png else None)
    write_markdown(view, files["md"], *plots)
    write_csv(table, files["csv"], files["cells_csv"])
    write_html(view, png, files["html"], attribution_png)
    return Built(files, table, loaded, chosen, left_out)


def add_attribution(view: View, dirs: Sequence[Path], models: Sequence[str]) -> bytes | None:
    """Fill the page's attribution section from the variant runs under `dirs`; returns its plot.

    Imported here, not at the top: mis_eval.attribution reads runs with this package's readers.
    """
    from mis_eval.attribution import analyse_results
    from mis_eval.attribution.plot import render_png as render_attribution
    from mis_eval.attribution.report import group_markdown, how_to_read, view_group

    report = analyse_results(dirs, models=models)
    view.attribution = [view_group(r) for r in report.results]
    view.attribution_note = how_to_read(report.results)
    view.attribution_messages = list(report.messages)
    view.attribution_md = [line for g in view.attribution for line in ("", *group_markdown(g, "###"))]
    view.attribution_md += [f"- not paired: {md_escape(m)}" for m in report.messages]
    return render_attribution(report.results)
