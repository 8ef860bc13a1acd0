"""`mis-eval run <lmms-eval args>`: lmms-eval with the mis-eval tasks, then the judge step.

Forwards every argument to `python -m lmms_eval` (with --log_samples on), then judges what
was logged. The installed package lets every lmms-eval process index our tasks
(mis_tasks/discovery.py), so a user's own --include_path passes through untouched; only
where that hook is missing (running from a source tree that was never installed) is our
folder given as --include_path. lmms-eval exits 0 even when a run fails: success here
means a samples file was written. Its output is piped through mis_eval/redaction.py: keys
in the arguments or the environment never reach the terminal.

lmms-eval runs in a process group of its own. SIGTERM, SIGINT (Ctrl-C) or SIGHUP sent to
`mis-eval run` is forwarded to that whole group (lmms-eval, the judge inside its aggregation,
any engine workers), and `mis-eval run` waits until lmms-eval has exited before it exits itself
(status 128 + signal number): no judge call is made after it is gone. A second signal kills
the group.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from mis_eval.commands.attribution import add_out_argument, report_runs
from mis_eval.commands.judge import add_judge_arguments, exit_status, judge_outputs, with_pooled
from mis_eval.processes import dying_with_parent
from mis_eval.redaction import Redactor, secret_values, start_pumps
from mis_tasks import discovery

HELP = "run lmms-eval with mis-eval's tasks (all other arguments go to lmms-eval), then judge"
DEFAULT_OUTPUT = Path("logs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_judge_arguments(p)
    p.add_argument("--no-judge", action="store_true", help="only generate (judge later with mis-eval judge)")
    add_out_argument(p)


def _has(argv: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def lmms_eval_command(argv: Sequence[str]) -> tuple[list[str], Path]:
    """The lmms-eval command line and its output folder."""
    args = list(argv)
    if not _has(args, "--output_path"):
        args += ["--output_path", str(DEFAULT_OUTPUT)]
    if not _has(args, "--log_samples"):
        args.append("--log_samples")
    out = Path(
        next(
            a.split("=", 1)[1] if "=" in a else args[i + 1]
            for i, a in enumerate(args)
            if a.split("=", 1)[0] == "--output_path"
        )
    )
    if _has(args, "--predict_only"):
        # lmms-eval then skips process_results, so the logs carry no item the judge can read.
        raise ValueError(
            "--predict_only logs no judgeable item; drop it (mis-eval judges after generating) "
            "or use --no-judge to generate now and `mis-eval judge` later"
        )
    if not discovery.active():
        if _has(args, "--include_path"):
            raise ValueError(
                "mis-eval is not installed in this environment (its task hook is missing), and lmms-eval "
                "takes a single --include_path: install it (pip install -e .) to combine both"
            )
        args += ["--include_path", discovery.TASKS_DIR]
    return [sys.executable, "-m", "lmms_eval", *args], out


class Interrupted(KeyboardInterrupt):
    """`mis-eval run` stopped by a signal, after lmms-eval (which got the signal too) exited."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _forwarding_signals(group: list[int], received: list[int]) -> Iterator[None]:
    """While inside: SIGTERM/SIGINT/SIGHUP go to the process group in `group` (once it is started), are
    recorded in `received`, and do not stop this process; a second one kills the group."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        for pgid in group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signum if len(received) == 1 else signal.SIGKILL)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_lmms_eval(argv: Sequence[str], *, judge_spec: str | None, env: dict[str, str] | None = None) -> Path:
    """Run lmms-eval; aggregation judges with the same judge (and cache) as the step after."""
    from judges.registry import ENV_JUDGE, ENV_JUDGE_ARGS
    from mis_eval.judging import split_spec

    cmd, out = lmms_eval_command(argv)
    child_env = dict(os.environ if env is None else env)
    if judge_spec:
        name, options = split_spec(judge_spec)
        child_env[ENV_JUDGE] = name
        child_env[ENV_JUDGE_ARGS] = options or ""
    redact = Redactor(secret_values(cmd, child_env))
    group: list[int] = []
    received: list[int] = []
    with _forwarding_signals(group, received):
        # piped, not inherited: lmms-eval prints its arguments (model_args with any key in them);
        # a group of its own: a signal reaches it only through us, and we see it end before we do;
        # killed with us (even by -9), so a dead run never leaves lmms-eval holding a GPU
        proc = subprocess.Popen(
            dying_with_parent(cmd),
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        group.append(proc.pid)
        if received:  # a signal (or two: kill) came before the group existed
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, received[0] if len(received) == 1 else signal.SIGKILL)
        assert proc.stdout is not None and proc.stderr is not None
        pumps = start_pumps([(proc.stdout, sys.stdout), (proc.stderr, sys.stderr)], redact)
        try:
            code = proc.wait()
        finally:
            for t in pumps:
                t.join(10)
    if received:
        raise Interrupted(received[0])
    if code != 0:
        raise SystemExit(f"lmms-eval exited with status {code}")
    return out


def run(args: argparse.Namespace) -> int:
    from mis_eval.report import summary

    if not args.passthrough:
        print("usage: mis-eval run --model M [--model_args A] --tasks mis_hard [other lmms-eval options]")
        return 2
    started = time.time()
    # lmms-eval's aggregation judges with the first judge; the step below reuses its cached verdicts.
    judge_spec = "none" if args.no_judge else (args.judge or [None])[0]
    out = run_lmms_eval(args.passthrough, judge_spec=judge_spec)
    fresh = [p for p in out.rglob("*_samples_*.jsonl") if p.stat().st_mtime >= started]
    if not fresh:
        print(f"lmms-eval wrote no samples under {out}: the run failed (see its log above)", file=sys.stderr)
        return 1
    if args.no_judge:
        print(f"responses logged under {out}; judge them with: mis-eval judge {out}")
        return 0
    records = judge_outputs(  # every log is checked before the first judge call
        sorted(fresh),
        args.judge,
        results_dir=args.results_dir,
        progress=not args.no_progress,
        max_unusable=args.max_unusable,
        duplicates=args.duplicates,
    )
    if records:
        records = with_pooled(records, args.results_dir)
        print(summary(records))
        report_runs(records, args.results_dir, args.attribution_out)  # MIS attribution variants, if run
    return exit_status(records, "run")
