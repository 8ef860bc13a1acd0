"""`mis-eval` command line: one module per subcommand under mis_eval/commands/."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

# subcommand -> module exposing HELP, add_arguments(parser) and run(args) -> int
COMMANDS: dict[str, str] = {
    "demo": "mis_eval.commands.demo",
    "run": "mis_eval.commands.run",
    "judge": "mis_eval.commands.judge",
    "tasks": "mis_eval.commands.tasks",
    "leaderboard": "mis_eval.commands.leaderboard",
    "selftest": "mis_eval.commands.selftest",
    "attribution": "mis_eval.commands.attribution",
    "view": "mis_eval.commands.view",
    "calibrate": "mis_eval.commands.calibrate",
    "sweep": "mis_eval.commands.sweep",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mis-eval", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, mod_name in COMMANDS.items():
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name == mod_name:  # command not built yet
                continue
            raise
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(argv)
    if rest and args.command != "run":
        build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    args.passthrough = rest
    try:
        return int(args._run(args) or 0)
    except (ValueError, OSError) as e:  # DataError and bad options are ValueErrors: one clear line
        print(f"mis-eval {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or a signal `mis-eval run` forwarded to lmms-eval
        signum = getattr(e, "signum", signal.SIGINT)
        print(
            f"mis-eval {args.command}: interrupted ({signal.Signals(signum).name}); finished work is kept "
            "(re-run to resume)",
            file=sys.stderr,
        )
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
