"""`mis-eval attribution RESULTS...`: pair the MIS variant runs and report where the harm comes from."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mis_eval.core.defaults import ATTRIBUTION_RESAMPLES as RESAMPLES
from mis_eval.core.defaults import SEED

if TYPE_CHECKING:  # the analysis (numpy, scipy, pandas, matplotlib) is imported when it runs
    from mis_eval.attribution import Report
    from mis_eval.core.record import RunRecord

HELP = (
    "multi-image attribution from run records of the mis_<split>_attribution and "
    "mir_<relation>_attribution tasks: ASR per variant, "
    "combination uplift, text-only baseline, order sensitivity, paired CIs and McNemar tests"
)


def add_out_argument(p: argparse.ArgumentParser, default: str = "attribution") -> None:
    p.add_argument(
        "--attribution-out",
        type=Path,
        default=Path(default),
        help=f"where the attribution report of MIS variant runs goes (default: {default})",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "results",
        nargs="*",
        type=Path,
        help="run-record folders (searched recursively) or files; default results",
    )
    p.add_argument(
        "--out", type=Path, default=Path("attribution"), help="output folder (default: attribution)"
    )
    p.add_argument(
        "--model", action="append", default=[], metavar="GLOB", help="only these models; repeatable"
    )
    p.add_argument(
        "--resamples", type=int, default=RESAMPLES, help=f"bootstrap resamples (default {RESAMPLES})"
    )
    p.add_argument("--seed", type=int, default=SEED, help=f"bootstrap seed (default {SEED})")


def run(args: argparse.Namespace) -> int:
    from mis_eval.attribution import analyse_results

    report = analyse_results(
        args.results or [Path("results")], models=args.model, resamples=args.resamples, seed=args.seed
    )
    if not report.results:
        for message in report.messages:
            print(f"warning: not paired: {message}", file=sys.stderr)
        print(
            "mis-eval attribution: no model has a mis_<split> run and a variant run with the same judge and "
            "data version (run the mis_attribution group, then judge it)",
            file=sys.stderr,
        )
        return 1
    print_report(report, args.out)
    return 0


def print_report(report: Report, out: Path) -> None:
    from mis_eval.attribution import write_outputs
    from mis_eval.attribution.report import markdown

    for message in report.messages:
        print(f"warning: not paired: {message}", file=sys.stderr)
    if report.results:
        print(markdown(report.results))
        files = write_outputs(report, out)
        print("Attribution report: " + ", ".join(str(p) for p in files.values()))


def report_runs(records: Sequence[RunRecord], results_dir: Path, out: Path) -> bool:
    """After `mis-eval run` / `demo`: the attribution report of just-written runs, if any is a variant.

    Returns whether there was one, so a plain paper-task run prints nothing more.
    """
    from mis_eval.attribution import analyse_results, is_variant_run

    if not any(is_variant_run(r) for r in records):
        return False

    print_report(analyse_results([results_dir / f"{r.run_id}.json" for r in records]), out)
    return True
