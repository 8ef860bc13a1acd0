"""Leaderboard regeneration time: 200 synthetic run records (20 models x 10 tasks).

Writes the records (MIS splits as judged run records, capability tasks as lmms-eval result
JSONs, two extra judged tasks), then times
  * build(): read + select + table + plot + write, in this process (median of --repeat runs), per stage;
  * `mis-eval leaderboard` as a user runs it: a fresh interpreter, imports included.
Goal: under 3 s on this machine.

    .venv/bin/python benchmarks/leaderboard.py [--models 20] [--tasks 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 3.0


def cli_seconds(results: Path, out: Path) -> float:
    """`mis-eval leaderboard` as a user runs it: a fresh interpreter, imports included."""
    cmd = [sys.executable, "-m", "mis_eval.cli", "leaderboard", "--results", str(results), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"mis-eval leaderboard failed: {proc.stderr[-2000:]}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from mis_eval.leaderboard import Options, build
    from mis_eval.leaderboard.plot import render_png
    from mis_eval.leaderboard.sources import load_results, reported_entries
    from mis_eval.leaderboard.spec import load_spec
    from mis_eval.leaderboard.table import build_table, select
    from mis_eval.testing.synthetic_runs import make_results

    with tempfile.TemporaryDirectory() as tmp:
        results, out = Path(tmp) / "results", Path(tmp) / "out"
        paths = make_results(results, n_models=args.models, n_tasks=args.tasks)
        print(f"{len(paths)} run files ({args.models} models x {args.tasks} tasks) in {results}")

        totals = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            built = build(Options(results, out))
            totals.append(time.perf_counter() - t0)
        assert sum(e.origin != "reported" for e in built.selected) == len(paths)

        spec = load_spec()
        t0 = time.perf_counter()
        loaded = load_results(results, spec)
        t1 = time.perf_counter()
        table = build_table(select(loaded.entries + reported_entries()), spec)
        t2 = time.perf_counter()
        render_png(table, spec.plot_x, spec.plot_y)
        t3 = time.perf_counter()

        cli = cli_seconds(results, out)

    med = statistics.median(totals)
    print(f"rows {len(table.rows)}, columns {len(table.columns)}")
    print(f"build() median of {args.repeat}: {med:.3f} s  (min {min(totals):.3f}, max {max(totals):.3f})")
    print(
        f"  stages: read {t1 - t0:.3f} s, table {t2 - t1:.3f} s, plot {t3 - t2:.3f} s, "
        f"write md/csv/html {max(0.0, med - (t3 - t0)):.3f} s"
    )
    print(f"mis-eval leaderboard (fresh process, imports included): {cli:.3f} s")
    verdict = "met" if cli < GOAL_S else "MISSED"
    print(f"goal < {GOAL_S:.1f} s: {verdict} (CLI / goal = {cli / GOAL_S:.2f})")
    return 0 if cli < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
