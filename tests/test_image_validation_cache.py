"""Image validation remembers files that passed: not decoded twice, but never trusted blindly.

Decodes are counted (mis_tasks.common.VALIDATION_STATS), not timed. Each test has its own cache
file (tests/conftest.py sets MIS_EVAL_IMAGE_CACHE).
"""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from mis_tasks import validated
from mis_tasks.common import VALIDATION_STATS, DataError, validate_images
from mis_tasks.mis.data import load_split


def decoded() -> int:
    return VALIDATION_STATS["decoded"]


def noise_png(path: Path, seed: int = 0, side: int = 48) -> Path:
    Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3)).save(path)
    return path


def images(tmp_path: Path, n: int) -> list[tuple[Path, str]]:
    return [(noise_png(tmp_path / f"{i}.png", i), f"rec {i}") for i in range(n)]


def corrupt_in_place(path: Path) -> None:
    """Same size, same mtime, different bytes: pixel data cut short and padded with zeros."""
    st = path.stat()
    data = path.read_bytes()
    path.write_bytes(data[:200] + b"\0" * (len(data) - 200))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_validated_file_is_not_decoded_again(tmp_path: Path, pool: str) -> None:
    items = images(tmp_path, 6)
    before = decoded()
    validate_images(items, workers=2, pool=pool)  # type: ignore[arg-type]
    assert decoded() - before == 6
    validate_images(items, workers=2, pool=pool)  # type: ignore[arg-type]
    assert decoded() - before == 6  # all six came from the cache
    validate_images([*items, (noise_png(tmp_path / "new.png", 99), "rec new")])
    assert decoded() - before == 7  # only the new file


def test_a_data_root_loaded_twice_is_decoded_once(mis_root: Path) -> None:
    before = decoded()
    first = load_split(mis_root, "hard")
    after_first = decoded()
    assert after_first - before == 2 * len(first)
    assert load_split(mis_root, "hard") == first
    assert decoded() == after_first


def test_a_file_changed_in_place_is_decoded_again_and_its_corruption_caught(tmp_path: Path) -> None:
    items = images(tmp_path, 3)
    validate_images(items)
    corrupt_in_place(items[1][0])  # size and mtime as validated: only the content hash tells
    before = decoded()
    with pytest.raises(DataError, match=r"rec 1: image .*1.png is not a readable image"):
        validate_images(items)
    assert decoded() - before == 1


def test_a_touched_file_is_decoded_again(tmp_path: Path) -> None:
    items = images(tmp_path, 2)
    validate_images(items)
    os.utime(items[0][0], ns=(0, 10**18))  # new mtime, same bytes
    before = decoded()
    validate_images(items)
    assert decoded() - before == 1


def test_a_lower_pixel_limit_re_checks_cached_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items = images(tmp_path, 1)  # 48 x 48 = 2,304 pixels
    validate_images(items)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match=r"rec 0: image .*decompression bomb"):
        validate_images(items)


@pytest.mark.parametrize("off", ["env", "argument"])
def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, off: str) -> None:
    items, cache_file = images(tmp_path, 2), Path(os.environ[validated.ENV])
    if off == "env":
        monkeypatch.setenv(validated.ENV, "off")
    before = decoded()
    for _ in range(2):
        validate_images(items, cache=False if off == "argument" else None)
    assert decoded() - before == 4
    assert not cache_file.exists()


def test_a_corrupt_cache_file_never_passes_a_bad_image(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    items = images(tmp_path, 2)
    validate_images(items)
    Path(os.environ[validated.ENV]).write_bytes(b"this is not a database" * 100)
    corrupt_in_place(items[0][0])
    with pytest.raises(DataError, match=r"rec 0: image .*0.png is not a readable image"):
        validate_images(items)
    assert "image validation cache" in capsys.readouterr().err  # said once, on stderr
    before = decoded()
    validate_images(items[1:])  # a good image still passes, decoded
    assert decoded() - before == 1


def test_mangled_cache_rows_count_as_misses(tmp_path: Path) -> None:
    items = images(tmp_path, 2)
    validate_images(items)
    with sqlite3.connect(os.environ[validated.ENV]) as db:
        db.execute("UPDATE validated SET sha256 = 'not a hash', size = 'big'")
    corrupt_in_place(items[0][0])
    before = decoded()
    with pytest.raises(DataError, match=r"rec 0: image .*0.png is not a readable image"):
        validate_images(items)
    assert decoded() - before == 2


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_the_first_bad_record_in_order_is_named(tmp_path: Path, pool: str) -> None:
    items = images(tmp_path, 8)
    for path, _ in (items[6], items[2]):
        path.write_bytes(path.read_bytes()[:300])
    (tmp_path / "5.png").unlink()
    with pytest.raises(DataError, match=r"^rec 2: image .*2.png is not a readable image"):
        validate_images(items, workers=3, pool=pool)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"^rec 5: image .*5.png not found"):
        validate_images(items[3:], workers=3, pool=pool)  # type: ignore[arg-type]
