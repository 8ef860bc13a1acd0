"""`mis-eval attribution RESULTS...`: pair the MIS variant runs and report where the harm comes from."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mis_eval.attribution import analyse_results, write_outputs
from mis_eval.attribution.measures import RESAMPLES
from mis_eval.attribution.report import markdown
from mis_eval.metrics import SEED

HELP = (
    "multi-image attribution from run records of the mis_<split>_attribution tasks: ASR per variant, "
    "combination uplift, text-only baseline, order sensitivity, paired CIs and McNemar tests"
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
    report = analyse_results(
        args.results or [Path("results")], models=args.model, resamples=args.resamples, seed=args.seed
    )
    for message in report.messages:
        print(f"warning: {message}", file=sys.stderr)
    if not report.results:
        print(
            "mis-eval attribution: no model has a mis_<split> run and a variant run with the same judge and "
            "data version (run the mis_attribution group, then judge it)",
            file=sys.stderr,
        )
        return 1
    print(markdown(report.results))
    files = write_outputs(report, args.out)
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0
