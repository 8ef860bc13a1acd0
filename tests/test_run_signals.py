"""SIGTERM / SIGINT on `mis-eval run` reach lmms-eval, and `mis-eval run` outlives it (issue 21, item 5).

A real `mis-eval run` (lmms-eval in a subprocess, the demo model, the local judge pointed at the fake
OpenAI server answering slowly) is signalled while lmms-eval's aggregation is judging. Once the
parent has exited, lmms-eval and everything it started must be gone and no judge call may arrive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mis_eval.testing.fake_openai import FakeOpenAIServer
from tests.mis_data import make_root

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_stops_lmms_eval_before_mis_eval_run_exits(tmp_path: Path, sig: signal.Signals) -> None:
    root = make_root(tmp_path / "data", "hard", n=16)
    with FakeOpenAIServer(latency=0.3) as srv:
        judge = f"local:base_url={srv.base_url},model=fake-gpt,concurrency=1,cache=off"
        proc = subprocess.Popen(
            [sys.executable, "-m", "mis_eval.cli", "run", "--model", "mis_demo", "--tasks", "mis_hard"]
            + ["--judge", judge, "--no-progress"],
            cwd=tmp_path,
            env={**os.environ, "MIS_DATA_ROOT": str(root), "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 240
            while srv.calls < 2:  # lmms-eval is judging inside its aggregation step
                assert proc.poll() is None and time.monotonic() < deadline, "no judge call arrived"
                time.sleep(0.05)
            family = psutil.Process(proc.pid).children(recursive=True)
            assert family, "lmms-eval runs in a child process"
            os.kill(proc.pid, sig)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        calls_at_exit = srv.calls
        time.sleep(2)  # any survivor would go on judging, one call per 0.3 s
        calls_later = srv.calls
    alive = [p.pid for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running after mis-eval run exited: {alive}"
    assert calls_later == calls_at_exit, "judge calls went on after mis-eval run exited"
    assert calls_at_exit < 16  # it stopped, rather than finishing the work
    assert proc.returncode == 128 + sig, out[-3000:]
    assert f"interrupted ({sig.name}); finished work is kept" in out
