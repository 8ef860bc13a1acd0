"""Start-up of the command line: wall time of `mis-eval --help` and `mis-eval judge --help`.

Every command pays this before doing anything. Each is run --repeat times in a fresh process
(median and best reported) next to a bare `python -c pass`, and the slowest imports of building
the parser are listed (`python -X importtime`). Goal: under 0.3 s each.

    .venv/bin/python benchmarks/cli_start.py [--repeat 10]
    cd other-checkout && python /path/to/benchmarks/cli_start.py --module   # time that checkout
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 0.3
COMMANDS = (["--help"], ["judge", "--help"])


def mis_eval_command(module: bool = False) -> list[str]:
    """The installed console script next to this interpreter (as a user runs it), else the module
    (`python -m mis_eval.cli`: the checkout in the current directory comes first)."""
    script = Path(sys.executable).with_name("mis-eval")
    return [str(script)] if script.exists() and not module else [sys.executable, "-m", "mis_eval.cli"]


def wall_times(cmd: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return times


def start_seconds(args: list[str], repeat: int = 5) -> float:
    """Median wall time of `mis-eval ARGS` in fresh processes."""
    return statistics.median(wall_times([*mis_eval_command(), *args], repeat))


def slowest_imports(n: int = 5) -> list[tuple[float, str]]:
    """(cumulative seconds, module) of the slowest top-level imports while building the parser."""
    code = "from mis_eval.cli import build_parser; build_parser()"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    # -c puts the current directory first on sys.path, as -m does
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)  # top level: no indent
        if m:
            rows.append((int(m.group(1)) / 1e6, m.group(2)))
    return sorted(rows, reverse=True)[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--module", action="store_true", help="python -m mis_eval.cli from the current directory")
    a = ap.parse_args()
    bare = wall_times([sys.executable, "-c", "pass"], a.repeat)
    print(f"python -c pass            : median {statistics.median(bare):.3f} s, best {min(bare):.3f} s")
    ok = True
    for args in COMMANDS:
        times = wall_times([*mis_eval_command(a.module), *args], a.repeat)
        med = statistics.median(times)
        ok &= med < GOAL_S
        label = "mis-eval " + " ".join(args)
        print(f"{label:<26}: median {med:.3f} s, best {min(times):.3f} s  (goal < {GOAL_S} s)")
    print("slowest imports of build_parser():")
    for seconds, module in slowest_imports():
        print(f"  {seconds:.3f} s  {module}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
