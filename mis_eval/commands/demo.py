"""`mis-eval demo`: the whole pipeline on bundled data, with no GPU, key or download.

lmms-eval runs the three MIS splits and the nine MIR-SafetyBench relation tasks of small
generated samples with the offline `mis_demo` model; the offline keyword judge grades the
answers; run records are written (MIR's pooled over its relations too) and the rates printed.
The numbers show the plumbing works, not any model's safety. With `--attribution` it runs the
`mis_attribution` and `mir_attribution` groups instead (image subsets, none, reordered) and
prints the attribution report.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from importlib import resources
from pathlib import Path

from mis_eval.commands.attribution import add_out_argument, report_runs
from mis_eval.commands.judge import judge_outputs, with_pooled
from mis_eval.commands.run import run_lmms_eval
from mis_eval.core.defaults import RESULTS_DIR as DEFAULT_RESULTS_DIR

HELP = "run the full pipeline offline on a bundled sample (demo model + keyword judge)"


def demo_data_root() -> Path:
    """The bundled MIS sample (MIS_DATA_ROOT layout)."""
    return Path(str(resources.files("mis_eval").joinpath("demo_data")))


def mir_demo_root() -> Path:
    """The bundled synthetic MIR-SafetyBench sample (MIR_DATA_ROOT, the release layout)."""
    return demo_data_root() / "mir_safetybench"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR, help="where run records go")
    p.add_argument("--output-path", type=Path, default=Path("logs/demo"), help="lmms-eval output folder")
    p.add_argument(
        "--attribution",
        action="store_true",
        help="run the attribution variants too and print the `mis-eval attribution` report",
    )
    add_out_argument(p, "attribution/demo")


def run(args: argparse.Namespace) -> int:
    from mis_eval.report import summary

    env = dict(os.environ, MIS_DATA_ROOT=str(demo_data_root()), MIR_DATA_ROOT=str(mir_demo_root()))
    started = time.time()
    out = run_lmms_eval(
        [
            "--model",
            "mis_demo",
            "--tasks",
            "mis_attribution,mir_attribution" if args.attribution else "mis,mir_safetybench",
            "--output_path",
            str(args.output_path),
            "--verbosity",
            "ERROR",
        ],
        judge_spec="keyword",
        env=env,
    )
    fresh = sorted(p for p in out.rglob("*_samples_*.jsonl") if p.stat().st_mtime >= started)
    if not fresh:
        print(f"lmms-eval wrote no samples under {out}: the demo failed (see its log above)", file=sys.stderr)
        return 1
    records = []
    roots = {"mis": str(demo_data_root()), "mir_safetybench": str(mir_demo_root())}
    for f in fresh:
        records += judge_outputs(
            f, ["keyword"], results_dir=args.results_dir, data_root=roots, progress=False
        )
    records = with_pooled(records, args.results_dir)
    print()
    if not (args.attribution and report_runs(records, args.results_dir, args.attribution_out)):
        print(summary(records))
    print(f"\nRun records: {args.results_dir.resolve()}  (model: mis_demo, an offline rule-based stand-in)")
    return 0
