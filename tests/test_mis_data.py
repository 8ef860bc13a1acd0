"""MIS data loading: valid roots load lazily; every kind of bad input names file and record."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

from mis_tasks.common import DataError
from mis_tasks.mis import utils
from mis_tasks.mis.data import load_split, load_task_docs
from tests.mis_data import make_root, record


def test_loads_records_with_paths_not_pixels(mis_root: Path) -> None:
    recs = load_split(mis_root, "hard")
    assert [r["id"] for r in recs] == ["1", "2", "3", "4", "5", "6"]
    first = recs[0]
    assert first["category"] == "Violent" and first["sub_category"] == "Weapons"
    assert first["task"] == "mis_hard"
    # Docs hold only strings: images are decoded on demand, so memory does not grow with the split.
    assert all(isinstance(p, str) for p in first["image_paths"])
    assert all(isinstance(v, (str, int, list)) for v in first.values())
    images = utils.doc_to_visual(first)
    assert [im.mode for im in images] == ["RGB", "RGB"]
    assert images[0].getpixel((0, 0)) == (200, 30, 30) and images[1].getpixel((0, 0)) == (30, 30, 200)
    assert utils.doc_to_text(first) == first["question"]


def test_fingerprint_changes_with_data(tmp_path: Path) -> None:
    a = load_split(make_root(tmp_path / "a", n=3), "hard")[0]["data_fingerprint"]
    b = load_split(make_root(tmp_path / "b", n=3), "hard")[0]["data_fingerprint"]
    c = load_split(make_root(tmp_path / "c", n=4), "hard")[0]["data_fingerprint"]
    assert a == b != c


def test_env_var_root(monkeypatch: pytest.MonkeyPatch, mis_root: Path) -> None:
    monkeypatch.setenv("MIS_DATA_ROOT", str(mis_root))
    assert len(load_task_docs("mis_hard")) == 6


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("category"), "missing field 'category'"),
        (lambda r: r.update(question=7), "field 'question' should be str"),
        (lambda r: r.update(image_path2="../../etc/passwd"), "escapes the data root"),
        (lambda r: r.update(image_path1="/etc/hosts"), "must be relative"),
        (lambda r: r.update(image_path2="hard_image/99/missing.png"), "not found"),
    ],
)
def test_bad_record_names_file_and_record(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    recs = [record(i) for i in range(1, 4)]
    root = make_root(tmp_path, records=recs)
    mutate(recs[1])
    (root / "mis_hard.json").write_text(json.dumps(recs))
    with pytest.raises(DataError) as e:
        load_split(root, "hard")
    assert message in str(e.value)
    assert "mis_hard.json record #1 (id=2)" in str(e.value)


def test_malformed_json(tmp_path: Path) -> None:
    (tmp_path / "mis_hard.json").write_text('[{"id": 1,')
    with pytest.raises(DataError, match=r"mis_hard.json: malformed JSON"):
        load_split(tmp_path, "hard")


def test_not_an_array_and_missing_file_and_unknown_split(tmp_path: Path) -> None:
    (tmp_path / "mis_hard.json").write_text('{"id": 1}')
    with pytest.raises(DataError, match="expected a JSON array"):
        load_split(tmp_path, "hard")
    with pytest.raises(DataError, match=r"mis_easy.json: file not found"):
        load_split(tmp_path, "easy")
    with pytest.raises(DataError, match="unknown MIS split 'medium'"):
        load_split(tmp_path, "medium")


def test_duplicate_id(tmp_path: Path) -> None:
    root = make_root(tmp_path, records=[record(1), record(1)])
    with pytest.raises(DataError, match="duplicate id 1"):
        load_split(root, "hard")


def test_image_that_is_not_an_image(mis_root: Path) -> None:
    (mis_root / "hard_image/3/object2.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match=r"record #2 \(id=3\).*object2.png is not a readable image"):
        load_split(mis_root, "hard")


def test_truncated_pixels_fail_at_use_naming_the_record(mis_root: Path) -> None:
    # caught while loading (tests/test_bad_images_and_empty_data.py); a file cut after loading
    # still fails at use, strictly
    doc = next(r for r in load_split(mis_root, "hard") if r["id"] == "2")
    path = mis_root / "hard_image/2/object1.png"
    Image.frombytes("RGB", (64, 64), random.Random(0).randbytes(64 * 64 * 3)).save(path)
    path.write_bytes(path.read_bytes()[:200])  # header intact, pixel data cut
    with pytest.raises(DataError, match=r"mis_hard record id=2: cannot load image .*object1.png"):
        utils.doc_to_visual(doc)


def test_data_root_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIS_DATA_ROOT", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="is not a directory"):
        load_task_docs("mis_hard")
