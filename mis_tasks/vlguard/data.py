"""VLGuard test set: three subsets from one file, validated (PROTOCOLS.md 4.2-4.3).

Data root (`VLGUARD_DATA_ROOT` or `dataset_kwargs: {data_root: ...}`):
`test.json` (from the VLGuard repo; its license is unknown, so it is not bundled), the
images of HF `ys-zong/VLGuard` test.zip under `test/` (or `images/`, or the root itself),
and optionally `gpt4_safe_safes.json` (reference answers for the win rate; test.json holds
the same answers, byte for byte, for all 558 safe images).
"""

from __future__ import annotations

from collections.abc import Mapping
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

SUBSETS = ("safe_safes", "safe_unsafes", "unsafes")
TASKS = {f"vlguard_{s}": s for s in SUBSETS}
ENV_ROOT = "VLGUARD_DATA_ROOT"
FIELDS: dict[str, type | tuple[type, ...]] = {"id": str, "image": str, "safe": bool, "instr-resp": list}
UNSAFE_FIELDS: dict[str, type | tuple[type, ...]] = {"harmful_category": str, "harmful_subcategory": str}
# subset -> (image is safe, key of the instruction in instr-resp)
SELECT = {
    "safe_safes": (True, "safe_instruction"),
    "safe_unsafes": (True, "unsafe_instruction"),
    "unsafes": (False, "instruction"),
}
IMAGE_DIRS = ("test", "images", ".")
REFERENCES = "gpt4_safe_safes.json"


def _entry(rec: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    found = [e for e in rec["instr-resp"] if isinstance(e, dict) and key in e]
    if len(found) != 1:
        raise DataError(f"{where}: 'instr-resp' should hold exactly one {key!r} entry, found {len(found)}")
    check_fields(found[0], {key: str, "response": str}, f"{where} instr-resp[{key}]")
    return found[0]


def image_dir(root: Path, first_image: str, where: str) -> Path:
    tried = [(root / d).resolve() for d in IMAGE_DIRS]
    for candidate in tried:
        if (candidate / first_image).is_file():
            return candidate
    raise DataError(f"{where}: image {first_image!r} not found under any of {', '.join(map(str, tried))}")


def _references(root: Path) -> tuple[dict[str, Mapping[str, Any]], Path | None]:
    path = root / REFERENCES
    if not path.is_file():
        return {}, None
    raw = read_json(path)
    if not isinstance(raw, list):
        raise DataError(f"{path}: expected a JSON array of records")
    out: dict[str, Mapping[str, Any]] = {}
    for i, rec in enumerate(raw):
        check_fields(rec, {"id": str, "instruction": str, "response": str}, f"{path} record #{i}")
        out[rec["id"]] = rec
    return out, path


def load_subset(
    root: Path | None, subset: str, *, task: str, check_images: bool = True
) -> list[dict[str, Any]]:
    """Validated records of one subset, one per image, in file order."""
    if subset not in SUBSETS:
        raise DataError(f"unknown VLGuard subset {subset!r}; expected one of {', '.join(SUBSETS)}")
    if root is None:
        raise DataError("no VLGuard data root: set VLGUARD_DATA_ROOT to the folder with test.json and test/")
    path = root / "test.json"
    raw = read_json(path)
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{path}: expected a non-empty JSON array of records")
    references, ref_path = _references(root) if subset == "safe_safes" else ({}, None)
    want_safe, key = SELECT[subset]
    images: Path | None = None
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    images_of: list[tuple[Path, str]] = []  # (image, record), decoded together after the schema checks
    for i, rec in enumerate(raw):
        where = f"{path} record #{i}" + (f" (id={rec.get('id')})" if isinstance(rec, dict) else "")
        check_fields(rec, FIELDS, where)
        if rec["id"] in seen:
            raise DataError(f"{where}: duplicate id {rec['id']}")
        seen.add(rec["id"])
        if not rec["safe"]:
            check_fields(rec, UNSAFE_FIELDS, where)
        if rec["safe"] != want_safe:
            continue
        entry = _entry(rec, key, where)
        images = images or image_dir(root, rec["image"], where)
        image = resolve_inside(images, rec["image"], where)
        images_of.append((image, where))
        reference, source = entry["response"], "test.json"
        if ref_path is not None:
            ref = references.get(rec["id"])
            if ref is None or ref["instruction"] != entry[key]:
                raise DataError(f"{ref_path}: no reference answer matching {where} and its instruction")
            reference, source = ref["response"], REFERENCES
        records.append(
            {
                "id": rec["id"],
                "task": task,
                "subset": subset,
                "image": rec["image"],
                "image_path": str(image),
                "source": rec["image"].split("/", 1)[0],
                "safe": rec["safe"],
                "harmful_category": rec.get("harmful_category", ""),
                "harmful_subcategory": rec.get("harmful_subcategory", ""),
                "question": entry[key],
                "reference_response": reference,
                "reference_source": source,
            }
        )
    if check_images:
        validate_images(images_of)
    require_records(records, f"{path} ({subset}: safe={want_safe} with a {key!r} entry)")
    files = [path] + ([ref_path] if ref_path else [])
    stamp_fingerprint(records, files, lambda r: {k: v for k, v in r.items() if k != "image_path"})
    return records


load_task_docs = task_loader(
    "VLGuard", TASKS, ENV_ROOT, lambda root, subset, task: load_subset(root, subset, task=task)
)
