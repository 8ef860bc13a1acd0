"""`mis-eval view PATH...`: a static HTML page to read (and label) the samples behind the numbers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "static HTML viewer (offline, escaped) for one run record or every run under a folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, help="run record(s) (*.json) or folder(s) of them")
    p.add_argument("--out", type=Path, default=Path("viewer"), help="output folder (default: viewer)")
    p.add_argument(
        "--data-root", help="where relative image paths of the records live (absolute paths need none)"
    )
    p.add_argument("--title", help="page title")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from mis_eval.viewer import build_viewer

    viewer = build_viewer(
        args.paths, args.out, data_root=args.data_root, title=args.title, progress=not args.no_progress
    )
    for problem in viewer.problems:
        print(f"warning: not used: {problem}", file=sys.stderr)
    print(
        f"{viewer.n_samples} sample(s) from {len(viewer.runs)} run(s), {viewer.n_images} image(s) -> "
        f"{viewer.html}\nopen {viewer.html.resolve().as_uri()}"
    )
    return 0
