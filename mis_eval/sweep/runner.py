"""Running one phase of a job (generation or judging) as a `mis-eval` subprocess with its own log,
and saying in words why it failed: a crash (its last error line), out of memory (CUDA's or the
kernel's OOM killer, signal 9), killed by another signal, timed out.

The same function runs on this machine (local sweeps, and every judging phase) and inside a Ray
task on whichever node Ray chose, where the environment carries the `CUDA_VISIBLE_DEVICES` Ray
assigned. The job runs in its own process group (a timeout or an interrupt stops all of it) and
dies with the process that started it (mis_eval/processes.py), so a Ray worker killed for memory
takes its job with it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mis_eval.core.record import utc_now
from mis_eval.processes import dying_with_parent

OK, FAILED, INCOMPLETE = "ok", "failed", "incomplete"
MIS_EVAL = "mis-eval"
EXIT_INCOMPLETE = 3  # `mis-eval judge`: records written, too many unusable verdicts
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_OOM = re.compile(r"(?i)(out of memory|OutOfMemoryError|\bMemoryError\b|Cannot allocate memory)")
_ERROR_LINE = re.compile(r"^(?:[\w.]+(?:Error|Exception|Exit)\b|error:|mis-eval \w+: error)|lmms-eval exited")
_CHILD_SIGNAL = re.compile(r"lmms-eval exited with status -(\d+)")
TAIL_BYTES = 200_000


@dataclass
class Phase:
    """One subprocess of a job: what to run, where its output goes, how long it may take."""

    job: str
    name: str  # "generate" | "judge"
    argv: list[str]  # ["mis-eval", ...] runs this interpreter's mis-eval (on a Ray node: its own install)
    log: str
    cwd: str
    env: dict[str, str] = field(default_factory=dict)  # on top of the running process's environment
    timeout_s: float | None = None


@dataclass
class Outcome:
    job: str
    phase: str
    status: str  # OK | FAILED | INCOMPLETE
    reason: str | None
    returncode: int | None
    seconds: float
    log: str
    started_at: str
    started_unix: float = 0.0  # the same moment, to the sub-second (which jobs ran at the same time)
    host: str = ""
    cuda_visible_devices: str | None = None  # as this job saw it (Ray: what Ray assigned)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _killed(number: int, who: str) -> str:
    if number == signal.SIGKILL:
        return (
            f"{who} killed by SIGKILL (out of memory: the kernel's OOM killer or a memory monitor, "
            "or kill -9)"
        )
    return f"{who} killed by {_signal_name(number)}"


def _last_error(text: str) -> str:
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    errors = [line for line in lines if _ERROR_LINE.search(line)]
    last = errors[-1] if errors else next((line for line in reversed(lines) if line), "")
    return last[:300]


def classify(phase: str, returncode: int, log_text: str) -> tuple[str, str | None]:
    """(status, reason) of a finished phase from its exit status and its log."""
    if returncode == 0:
        return OK, None
    if returncode < 0:
        return FAILED, _killed(-returncode, "the job was")
    if child := _CHILD_SIGNAL.search(log_text):
        return FAILED, _killed(int(child.group(1)), "lmms-eval was")
    if phase == "judge" and returncode == EXIT_INCOMPLETE:
        reasons = [
            _ANSI.sub("", line).split("INCOMPLETE:", 1)[1].strip()
            for line in log_text.splitlines()
            if "INCOMPLETE:" in line
        ]
        return INCOMPLETE, "judged, but too many unusable verdicts: " + ("; ".join(reasons[-3:]) or "see log")
    last = _last_error(log_text)
    if _OOM.search(log_text):
        oom = [_ANSI.sub("", line).strip() for line in log_text.splitlines() if _OOM.search(line)]
        return FAILED, f"out of memory: {oom[-1][:300]}"
    return FAILED, f"crashed (exit status {returncode}): {last}"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the job's whole process group (lmms-eval and anything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_phase(phase: Phase) -> Outcome:
    """Run the phase to its end; its output goes to the end of its log, after a header."""
    devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    log = Path(phase.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    started, began, began_unix = utc_now(), time.monotonic(), time.time()
    with log.open("ab") as out:
        start = out.tell()
        argv = mis_eval_argv(*phase.argv[1:]) if phase.argv[:1] == [MIS_EVAL] else list(phase.argv)
        header = (
            f"\n===== {phase.job} {phase.name} {started} on {socket.gethostname()} "
            f"CUDA_VISIBLE_DEVICES={devices if devices is not None else '(unset)'}\n"
            f"$ {' '.join(phase.argv)}\n"
        )
        out.write(header.encode())
        out.flush()
        proc = subprocess.Popen(
            dying_with_parent(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=phase.cwd,
            env={**os.environ, **phase.env},
            start_new_session=True,
        )
        timed_out = False
        try:
            proc.wait(timeout=phase.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(proc)
        except BaseException:  # interrupted: the job must not outlive the sweep
            _stop(proc)
            raise
    with log.open("rb") as f:
        f.seek(max(start, log.stat().st_size - TAIL_BYTES))
        text = f.read().decode("utf-8", "replace")
    status, reason = (
        (FAILED, f"timed out after {phase.timeout_s:g} s (limits.timeout_s)")
        if timed_out
        else classify(phase.name, proc.returncode, text)
    )
    return Outcome(
        job=phase.job,
        phase=phase.name,
        status=status,
        reason=reason,
        returncode=proc.returncode,
        seconds=round(time.monotonic() - began, 3),
        log=str(log),
        started_at=started,
        started_unix=round(began_unix, 3),
        host=socket.gethostname(),
        cuda_visible_devices=devices,
    )


def run_phase_dict(phase: dict[str, Any]) -> dict[str, Any]:
    """`run_phase` with plain data in and out: the body of a Ray task (mis_eval/sweep/ray_pool.py)."""
    return run_phase(Phase(**phase)).to_dict()


def mis_eval_argv(*args: str) -> list[str]:
    """A `mis-eval` command line for this interpreter (a worker node runs its own install)."""
    return [sys.executable, "-m", "mis_eval.cli", *args]
