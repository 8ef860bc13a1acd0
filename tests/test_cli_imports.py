"""Building the command line imports no heavy library: `mis-eval --help` must not pay for them.

Counted in a fresh interpreter (the test process itself has imported everything), not timed:
`benchmarks/smoke.py` times the start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys

# Each costs 0.1-0.7 s to import; the commands import them where they use them.
HEAVY = (
    "scipy",
    "pandas",
    "matplotlib",
    "torch",
    "transformers",
    "datasets",
    "lmms_eval",
    "openai",
    "numpy",
    "PIL",
)

PROBE = """
import argparse, contextlib, importlib, io, json, sys
from mis_eval.cli import COMMANDS, build_parser, main

build_parser()
for name, module in COMMANDS.items():
    importlib.import_module(module).add_arguments(argparse.ArgumentParser(prog=name))
for argv in (["--help"], ["judge", "--help"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_parsers_and_help_import_no_heavy_library() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "mis_eval" in loaded  # the probe did import the command line
    assert not loaded & set(HEAVY), f"imported while building the parsers: {sorted(loaded & set(HEAVY))}"
