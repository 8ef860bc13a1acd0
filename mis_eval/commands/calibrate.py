"""`mis-eval calibrate --labels FILE RUNS...`: judge agreement with human labels, corrected ASR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "agreement of each judge with human labels (viewer export) and a judge-error-corrected ASR"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "runs", nargs="+", type=Path, help="run record(s) or folder(s): the judged runs to calibrate"
    )
    p.add_argument("--labels", required=True, type=Path, help="labels JSONL exported from `mis-eval view`")
    p.add_argument(
        "--out",
        type=Path,
        help="calibration record to write (default: results/calibration/calibration__<time>.json, "
        "where the leaderboard reads it)",
    )
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap replicates (default 2000)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from mis_eval.calibration import calibrate, read_labels, report, write_calibration
    from mis_eval.records import find_runs

    labels = read_labels(args.labels)  # a bad label file fails before anything is computed
    if not labels:
        raise ValueError(f"labels {args.labels}: no labels")
    problems: list[str] = []
    runs = find_runs(args.runs, problems)
    for problem in problems:
        print(f"warning: not used: {problem}", file=sys.stderr)
    if not runs:
        raise ValueError(f"no run records under {', '.join(map(str, args.runs))}")
    if args.bootstrap < 100:
        raise ValueError("--bootstrap must be at least 100")
    cal = calibrate(labels, runs, labels_file=args.labels, bootstrap=args.bootstrap, seed=args.seed)
    stamp = cal.created_at.replace(":", "").replace("-", "").replace("+0000", "Z")
    out = args.out or Path("results") / "calibration" / f"calibration__{stamp}.json"
    write_calibration(cal, out)
    print(report(cal))
    print(f"\ncalibration record: {out}")
    return 0
