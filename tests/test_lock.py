"""The lock check CI runs: it passes on the committed lock and fails on a stale one."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_lock", REPO / "scripts" / "check_lock.py")
assert spec and spec.loader
check_lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_lock)


def _copy(tmp_path: Path) -> Path:
    for name in ("setup.cfg", "constraints.txt"):
        shutil.copyfile(REPO / name, tmp_path / name)
    return tmp_path


def test_committed_lock_matches_setup_cfg() -> None:
    assert check_lock.problems(REPO / "locks" / "cpu.txt", ["dev"]) == []


def test_new_dependency_or_tightened_range_makes_the_lock_stale(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    cfg = (root / "setup.cfg").read_text(encoding="utf-8")
    cfg = cfg.replace("    tqdm>=4.66\n", "    tqdm>=99\n    not-a-locked-package>=1\n")
    (root / "setup.cfg").write_text(cfg, encoding="utf-8")
    found = check_lock.problems(REPO / "locks" / "cpu.txt", ["dev"], root)
    assert any(p.startswith("tqdm==") and "tqdm>=99" in p for p in found), found
    assert any(p.startswith("not-a-locked-package: required") for p in found), found


def test_lock_pins_the_known_breaking_exclusions() -> None:
    """filelock 4.3 removed filelock._api, which lmms-eval 0.7.3 imports."""
    pins = check_lock.pins(REPO / "locks" / "cpu.txt")
    major, minor = (int(x) for x in pins["filelock"].split(".")[:2])
    assert (major, minor) < (4, 3)
    assert pins["torch"].endswith("+cpu")
