"""SIUO question files and images, validated (PROTOCOLS.md 3.2-3.3).

Data root (`SIUO_DATA_ROOT` or `dataset_kwargs: {data_root: ...}`) in the release layout:
`images/<image>` (e.g. images/S-01.png; the `images/` level may be omitted) and,
optionally, `siuo_gen.json` / `siuo_mcqa.json`; without them the bundled byte-exact copies
are used. Images must be supplied. Upstream joined the folder and file name without a
separator (bug U3); here paths are joined, checked to stay inside the root, and opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from mis_tasks.common import (
    DataError,
    check_fields,
    read_json,
    require_records,
    resolve_inside,
    stamp_fingerprint,
    task_loader,
    validate_images,
)

FILES = {"gen": "siuo_gen.json", "mcqa": "siuo_mcqa.json"}
TASKS = {"siuo_gen": "gen", "siuo_mcqa": "mcqa"}
ENV_ROOT = "SIUO_DATA_ROOT"
COMMON: dict[str, type | tuple[type, ...]] = {
    "question_id": int,
    "image": str,
    "question": str,
    "category": str,
}
FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "gen": {**COMMON, "safety_warning": str, "reference_answer": str},
    "mcqa": {**COMMON, "options": dict, "correct_option": str},
}
LETTERS = ("A", "B", "C", "D")


def question_file(root: Path | None, kind: str) -> Path:
    own = root / FILES[kind] if root else None
    bundled = Path(str(resources.files("mis_tasks.siuo.questions"))) / FILES[kind]
    return own if own and own.is_file() else bundled


def image_dir(root: Path) -> Path:
    return root / "images" if (root / "images").is_dir() else root


def _check_options(rec: Mapping[str, Any], where: str) -> None:
    options = rec["options"]
    if set(options) != set(LETTERS) or not all(isinstance(v, str) for v in options.values()):
        raise DataError(f"{where}: field 'options' should map A, B, C, D to strings, got {sorted(options)}")
    if rec["correct_option"] not in options:
        raise DataError(f"{where}: correct_option {rec['correct_option']!r} is not one of the options")


def load(root: Path | None, kind: str, *, task: str, check_images: bool = True) -> list[dict[str, Any]]:
    """Validated records of one task kind ("gen" or "mcqa"), image paths resolved in the root."""
    if kind not in FILES:
        raise DataError(f"unknown SIUO task kind {kind!r}; expected gen or mcqa")
    if root is None:
        raise DataError("no SIUO data root: set SIUO_DATA_ROOT to the folder holding images/<name>.png")
    path = question_file(root, kind)
    raw = read_json(path)
    if not isinstance(raw, list):
        raise DataError(f"{path}: expected a JSON array of records, got {type(raw).__name__}")
    require_records(raw, str(path))
    images = image_dir(root)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    images_of: list[tuple[Path, str]] = []  # (image, record), decoded together after the schema checks
    for i, rec in enumerate(raw):
        qid = f" (question_id={rec.get('question_id')})" if isinstance(rec, dict) else ""
        where = f"{path} record #{i}{qid}"
        check_fields(rec, FIELDS[kind], where)
        if kind == "mcqa":
            _check_options(rec, where)
        rid = str(rec["question_id"])
        if rid in seen:
            raise DataError(f"{where}: duplicate question_id {rid}")
        seen.add(rid)
        image = resolve_inside(images, rec["image"], where)
        images_of.append((image, where))
        fields = {k: rec[k] for k in FIELDS[kind]}
        records.append({**fields, "id": rid, "task": task, "image_path": str(image)})
    if check_images:
        validate_images(images_of)
    stamp_fingerprint(records, [path], lambda r: {k: r[k] for k in FIELDS[kind]})
    return records


load_task_docs = task_loader("SIUO", TASKS, ENV_ROOT, lambda root, kind, task: load(root, kind, task=task))
