"""Child processes that die with their parent, so a killed run never leaves a model holding a GPU.

A `mis-eval run` killed with -9 (by the kernel's OOM killer, by Ray's memory monitor killing its
worker, by a cancelled job) cannot stop its lmms-eval child, which would go on holding the
GPU. On Linux a child can ask the kernel for a signal when its parent dies (prctl
PR_SET_PDEATHSIG); `dying_with_parent(argv)` starts the command through a tiny interpreter that
asks for SIGKILL and then execs it (the request survives exec). It is done in the new process
rather than in Popen's `preexec_fn`, which is unsafe in a process with threads (a Ray worker).
Elsewhere the command is returned unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1
_TRAMPOLINE = (
    "import ctypes, os, signal, sys\n"
    f"ctypes.CDLL(None, use_errno=True).prctl({PR_SET_PDEATHSIG}, int(signal.SIGKILL))\n"
    "if os.getppid() != int(sys.argv[1]):\n"  # the parent died before the request took effect
    "    os._exit(128 + int(signal.SIGKILL))\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def dying_with_parent(argv: Sequence[str]) -> list[str]:
    """`argv`, started so that the kernel kills it when the process that starts it dies."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-I", "-S", "-c", _TRAMPOLINE, str(os.getpid()), *argv]
