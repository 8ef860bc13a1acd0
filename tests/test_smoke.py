"""benchmarks/smoke.py: the fixed line format the stop hook and issue notes rely on.

Only the cheap figures run here (the install record, the CLI start); no figure's value is
asserted (speed is the benchmarks' business), only the format, that each status follows from
its value and goal, and the exit status 0.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "benchmarks" / "smoke.py"


@pytest.fixture
def smoke() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smoke", SMOKE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["smoke"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_smoke(*args: str, **env: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, str(SMOKE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_a_line_reads_back_into_its_fields(smoke: ModuleType) -> None:
    f = smoke.judged("judge / ideal, faults", 1.234, "x", 1.3, "<=", "n=1000 c=64 | odd detail")
    assert (f.value, f.goal, f.status) == ("1.23x", "<=1.3x", "PASS")
    assert smoke.parse_line(smoke.line(f)) == f  # a " | " inside the detail stays in the detail
    assert smoke.judged("batched", 3.9, "x", 4.0, ">=", "").status == "FAIL"
    for junk in ("", "mis-eval smoke: 2 cores", "a | b | c | d | e", "a | 1s | goal 2s | MAYBE | x"):
        with pytest.raises(ValueError):
            smoke.parse_line(junk)


def test_smoke_prints_parseable_lines_and_exits_0(tmp_path: Path, smoke: ModuleType) -> None:
    lines = run_smoke("--only", "install,cli", MIS_EVAL_INSTALL_RECORD=str(tmp_path / "none.json"))
    assert (
        len(lines) == 4 and lines[0].startswith("mis-eval smoke:") and lines[-1].startswith("mis-eval smoke:")
    )
    install, cli = (smoke.parse_line(text) for text in lines[1:3])
    assert (install.value, install.status) == ("n/a", "N/A") and "none.json" in install.detail
    assert cli.name == "CLI start"
    assert cli.status == ("PASS" if float(cli.value.removesuffix("s")) <= 0.3 else "FAIL")


def test_the_install_line_reads_the_install_record(
    tmp_path: Path, smoke: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "mis-eval-install.json"
    record.write_text(
        json.dumps({"seconds": 41.5, "installer": "pip", "profile": "cpu", "lock": "locks/cpu.txt"})
    )
    monkeypatch.setattr(smoke, "INSTALL_RECORD", record)
    (line,) = smoke.install_figures()
    assert (line.value, line.goal, line.status) == ("41.50s", "<=30s", "FAIL")
    assert "pip" in line.detail and "locks/cpu.txt" in line.detail


def test_an_unknown_check_is_named_and_the_exit_status_is_still_0() -> None:
    (line,) = run_smoke("--only", "nonsense")
    assert "unknown check(s) nonsense" in line
