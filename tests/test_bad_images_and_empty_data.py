"""Bad data found before generation: decompression bombs, truncated pixels, empty question lists.

Each case names the file and the record, from the loader (before lmms-eval builds its dataset).
"""

from __future__ import annotations

import json
import random
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from mis_tasks.common import DataError, check_image, open_image
from mis_tasks.mis.data import load_split
from mis_tasks.mm_safetybench import data as mmsb
from mis_tasks.siuo import data as siuo
from mis_tasks.vlguard import data as vlg
from tests.mis_data import make_root


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb_png(path: Path, width: int = 20000, height: int = 20000) -> None:
    """A valid PNG header claiming width x height pixels (a few bytes on disk)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def truncate_png(path: Path) -> None:
    """Noise pixels (incompressible), then cut: the header still parses, the pixels do not."""
    Image.frombytes("RGB", (64, 64), random.Random(0).randbytes(64 * 64 * 3)).save(path)
    path.write_bytes(path.read_bytes()[:200])


def test_decompression_bomb_names_file_and_record(mis_root: Path) -> None:
    write_bomb_png(mis_root / "hard_image/4/object2.png")
    with pytest.raises(DataError, match=r"mis_hard.json record #3 \(id=4\): image .*4/object2.png .*bomb"):
        load_split(mis_root, "hard")


def test_image_over_the_pixel_limit_but_under_twice_it_is_refused_too(tmp_path: Path) -> None:
    # PIL only warns between MAX_IMAGE_PIXELS and twice that, then decodes: a 500 MB allocation.
    path = tmp_path / "big.png"
    write_bomb_png(path, 10000, 10000)  # 1e8 pixels > 89.5M
    with pytest.raises(DataError, match=r"rec 7: image .*big.png .*decompression bomb"):
        check_image(path, "rec 7")
    with pytest.raises(DataError, match=r"rec 7: cannot load image .*big.png .*decompression bomb"):
        open_image(path, "rec 7")


def test_truncated_png_is_found_while_loading_not_during_generation(mis_root: Path) -> None:
    truncate_png(mis_root / "hard_image/2/object1.png")
    with pytest.raises(DataError, match=r"mis_hard.json record #1 \(id=2\): image .*2/object1.png"):
        load_split(mis_root, "hard")


def test_truncated_image_is_found_even_where_lmms_eval_allows_truncation(mis_root: Path) -> None:
    from PIL import ImageFile

    truncate_png(mis_root / "hard_image/5/object2.png")
    saved, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, True  # as lmms-eval sets it
    try:
        with pytest.raises(DataError, match=r"record #4 \(id=5\): image .*object2.png"):
            load_split(mis_root, "hard")
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved
    assert ImageFile.LOAD_TRUNCATED_IMAGES is saved


def test_truncated_jpeg_is_found_while_loading(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    Image.frombytes("RGB", (64, 64), random.Random(1).randbytes(64 * 64 * 3)).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(DataError, match=r"rec x: image .*x.jpg is not a readable image"):
        check_image(path, "rec x")


def test_empty_mis_question_list_names_the_file(tmp_path: Path) -> None:
    root = make_root(tmp_path, records=[])
    with pytest.raises(DataError, match=r"mis_hard.json: no records"):
        load_split(root, "hard")


def test_empty_siuo_question_list_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "siuo_gen.json").write_text("[]")
    with pytest.raises(DataError, match=r"siuo_gen.json: no records"):
        siuo.load(tmp_path, "gen", task="siuo_gen")


def test_vlguard_subset_without_records_names_the_file(tmp_path: Path) -> None:
    rec = {
        "id": "a",
        "image": "src/a.png",
        "safe": True,
        "instr-resp": [
            {"safe_instruction": "Describe it.", "response": "A cat."},
            {"unsafe_instruction": "Harm it.", "response": "No."},
        ],
    }
    (tmp_path / "test.json").write_text(json.dumps([rec]))
    (tmp_path / "test" / "src").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "test" / "src" / "a.png")
    assert len(vlg.load_subset(tmp_path, "safe_safes", task="t")) == 1
    with pytest.raises(DataError, match=r"test.json \(unsafes.*\): no records"):
        vlg.load_subset(tmp_path, "unsafes", task="t")


def test_empty_mmsb_scenario_file_names_the_file(tmp_path: Path) -> None:
    shutil.copytree(mmsb.bundled_questions(), tmp_path / "processed_questions")
    (tmp_path / "processed_questions" / "05-EconomicHarm.json").write_text("{}")
    with pytest.raises(DataError, match=r"05-EconomicHarm.json: no records"):
        mmsb.load_variant(tmp_path, "TYPO", task="t")


def test_empty_task_never_reaches_datasets() -> None:
    from mis_tasks.lmms_task import LocalDataTask

    class Empty(LocalDataTask):
        load_docs = staticmethod(lambda task, dataset_kwargs=None: {})

    task = Empty.__new__(Empty)
    task._config = type("C", (), {"task": "mis_empty"})()
    with pytest.raises(DataError, match="task mis_empty: no records"):
        task.download()
