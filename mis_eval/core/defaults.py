"""Defaults that `mis-eval <command> --help` shows, in a module that imports nothing heavy.

Building the command line must not import numpy, pandas, scipy or matplotlib (every command,
`--help` included, would pay for them first); the library modules that use these values import
them from here, so each still has one definition.
"""

from __future__ import annotations

from pathlib import Path

RESULTS_DIR = Path("results")  # where run records go
SEED = 1234  # every bootstrap's seed (rates, attribution)
ATTRIBUTION_RESAMPLES = 2000  # paired bootstrap resamples of the attribution measures
LEADERBOARD_KEEP = ("newest", "per-judge")  # which runs the leaderboard keeps per model x task
# Above this fraction of unusable verdicts (judge error / unparseable) a run record is marked
# incomplete and `mis-eval judge` / `run` exit non-zero: the rates would describe a biased subset.
MAX_UNUSABLE = 0.05
# What to do with a record logged on several lines: refuse the log (default), or keep one line of each.
DUPLICATES = ("error", "first", "last")
