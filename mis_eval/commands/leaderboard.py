"""`mis-eval leaderboard`: regenerate leaderboard.md/.csv and index.html from stored runs."""

from __future__ import annotations

import argparse
import sys

from mis_eval.core.defaults import LEADERBOARD_KEEP as KEEP

HELP = "rebuild the leaderboard (Markdown, CSV, static HTML with plot) from every run under results/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results",
        action="append",
        metavar="DIR",
        help="run records and lmms-eval results folder, searched recursively (repeatable; default: results)",
    )
    p.add_argument("--out", default="leaderboard", help="output folder (default: leaderboard)")
    p.add_argument(
        "--keep",
        choices=KEEP,
        default="newest",
        help="newest: one run per model x task; per-judge: one per model x task x judge x data version",
    )
    p.add_argument(
        "--pin",
        action="append",
        default=[],
        metavar="RUN",
        help="use this run id or file (relative to --results) instead of the newest; repeatable",
    )
    p.add_argument(
        "--model", action="append", default=[], metavar="GLOB", help="only these models; repeatable"
    )
    p.add_argument("--task", action="append", default=[], metavar="GLOB", help="only these tasks; repeatable")
    p.add_argument("--judge", help="only judged runs whose judge id/model contains this text")
    p.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="NAME=SHOWN",
        help="show a model under another name (e.g. to join lmms-eval and judged runs); repeatable",
    )
    p.add_argument("--no-reported", dest="reported", action="store_false", help="leave out published numbers")
    p.add_argument("--spec", help="column spec YAML (default: the bundled columns.yaml)")
    p.add_argument(
        "--sort", help="summary name (e.g. 'Capability avg') or task/metric (e.g. mis_hard/ASR) to sort by"
    )
    p.add_argument(
        "--include-limited",
        action="store_true",
        help="also show runs made with lmms-eval --limit (in their own columns; left out by default)",
    )
    p.add_argument(
        "--include-incomplete",
        action="store_true",
        help="also show run records marked incomplete (too many unusable verdicts; in their own columns "
        "marked INCOMPLETE; left out by default)",
    )
    p.add_argument("--strict", action="store_true", help="exit 2 when any results file could not be used")


def run(args: argparse.Namespace) -> int:
    from mis_eval.leaderboard import Options, build

    aliases = {}
    for a in args.alias:
        if "=" not in a:
            print(f"mis-eval leaderboard: --alias {a!r} is not NAME=SHOWN", file=sys.stderr)
            return 2
        k, v = a.split("=", 1)
        aliases[k] = v
    try:
        built = build(
            Options(
                results_dir=args.results or ["results"],
                out_dir=args.out,
                spec=args.spec,
                keep=args.keep,
                pins=args.pin,
                models=args.model,
                tasks=args.task,
                judge=args.judge,
                reported=args.reported,
                aliases=aliases,
                sort=args.sort,
                include_limited=args.include_limited,
                include_incomplete=args.include_incomplete,
            )
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"mis-eval leaderboard: {e}", file=sys.stderr)
        return 2
    for problem in built.loaded.problems:
        print(f"warning: not used: {problem}", file=sys.stderr)
    for entry, why in built.left_out:
        print(f"note: left out {entry.source} ({entry.task}): {why}")
    measured = sum(r.origin == "measured" for r in built.table.rows)
    runs = sum(e.origin != "reported" for e in built.selected)
    print(
        f"{runs} run(s) of {measured} model(s), {len(built.selected) - runs} reported number set(s), "
        f"{len(built.table.columns)} column(s) ->"
    )
    for path in built.files.values():
        print(f"  {path}")
    return 2 if args.strict and built.loaded.problems else 0
