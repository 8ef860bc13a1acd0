"""`mis-eval run` passes lmms-eval's output through, with keys from arguments and environment masked."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mis_eval.redaction import Redactor, pump, secret_values
from tests.mis_data import make_root

ARG_KEY = "sk-test-argkey-0123456789-abcdef"  # fake; hyphens keep it from looking like a real key
ENV_KEY = "envsecret-5f3a9c1d2b7e"


def test_secret_values_come_from_args_and_environment() -> None:
    argv = ["--model_args", f"pretrained=x,api_key={ARG_KEY}", "--hf_token", "hf-tok-123456", "--tasks", "t"]
    env = {"MY_SERVICE_API_KEY": ENV_KEY, "PATH": "/usr/bin:/bin", "HF_TOKEN": "hf_abcdefghijklmnopqrstu"}
    found = secret_values(argv, env)
    assert {ARG_KEY, ENV_KEY, "hf-tok-123456", "hf_abcdefghijklmnopqrstu"} <= set(found)
    assert "/usr/bin:/bin" not in found and "x" not in found


def test_redactor_masks_known_values_and_secret_looking_pairs() -> None:
    r = Redactor([ENV_KEY])
    text = (
        f"model_args='api_key={ARG_KEY},pretrained=m' {{'token': 'abc123xyz'}} {ENV_KEY} Bearer abcdefghijkl"
    )
    out = r(text)
    assert ARG_KEY not in out and ENV_KEY not in out and "abc123xyz" not in out and "abcdefghijkl" not in out
    assert "pretrained=m" in out and "api_key=***" in out


def test_pump_redacts_while_streaming_and_keeps_progress_bars_moving(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        f"sys.stdout.write('loading api_key={ARG_KEY}\\n'); sys.stdout.flush()\n"
        "for i in range(3):\n"
        "    sys.stdout.write(f'\\rprogress {i}/3'); sys.stdout.flush(); time.sleep(0.05)\n"
        f"sys.stdout.write('\\nkey {ENV_KEY[:8]}'); sys.stdout.flush(); time.sleep(0.05)\n"
        f"sys.stdout.write('{ENV_KEY[8:]} done\\n')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    out = io.StringIO()
    assert proc.stdout is not None
    pump(proc.stdout, out, Redactor([ENV_KEY]))
    proc.wait()
    text = out.getvalue()
    assert ARG_KEY not in text and ENV_KEY not in text  # even split across two writes
    assert "\rprogress 2/3" in text and "key *** done" in text


@pytest.mark.slow
def test_run_never_prints_a_key_lmms_eval_would_echo(tmp_path: Path) -> None:
    root = make_root(tmp_path / "data", "hard", n=3)
    env = {**os.environ, "MIS_DATA_ROOT": str(root), "SOME_PROVIDER_API_KEY": ENV_KEY}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mis_eval.cli",
            "run",
            "--model",
            "mis_demo",
            "--model_args",
            f"refuse_ratio=0.5,api_key={ARG_KEY},note={ENV_KEY}",
            "--tasks",
            "mis_hard",
            "--judge",
            "keyword",
            "--verbosity",
            "DEBUG",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    both = proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mis_hard" in proc.stdout  # lmms-eval's own output still comes through
    assert "api_key=***" in both  # lmms-eval did print the model args, masked
    assert ARG_KEY not in both and ENV_KEY not in both
