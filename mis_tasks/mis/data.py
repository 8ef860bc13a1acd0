"""MIS question files: schema, path and image checks (PROTOCOLS.md 1.2)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from mis_tasks.common import (
    DataError,
    check_fields,
    data_root,
    read_json,
    remember,
    require_records,
    resolve_inside,
    stamp_fingerprint,
    validate_images,
)
from mis_tasks.mis.variants import SPLITS, VARIANTS, parse_task

ENV_ROOT = "MIS_DATA_ROOT"
HUB_DATASET = "Tuwhy/MIS_Test"

FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": (int, str),
    "question": str,
    "category": str,
    "sub_category": str,
    "image_path1": str,
    "image_path2": str,
}


def split_file(root: Path, split: str) -> Path:
    if split not in SPLITS:
        raise DataError(f"unknown MIS split {split!r}; expected one of {', '.join(SPLITS)}")
    return root / f"mis_{split}.json"


def load_split(
    root: Path, split: str, *, task: str | None = None, check_images: bool = True
) -> list[dict[str, Any]]:
    """Validated records of one split, image paths resolved inside `root`.

    Each record keeps its dataset fields and gains `task`, `image_paths` (absolute) and
    `data_fingerprint`; ids are stored as strings so they key the same in every file format.
    """
    path = split_file(root, split)
    raw = read_json(path)
    if not isinstance(raw, list):
        raise DataError(f"{path}: expected a JSON array of records, got {type(raw).__name__}")
    require_records(raw, str(path))
    task = task or f"mis_{split}"
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    images_of: list[tuple[Path, str]] = []  # (image, record), decoded together after the schema checks
    for i, rec in enumerate(raw):
        where = f"{path} record #{i}" + (f" (id={rec.get('id')})" if isinstance(rec, dict) else "")
        check_fields(rec, FIELDS, where)
        rid = str(rec["id"])
        if rid in seen:
            raise DataError(f"{where}: duplicate id {rid}")
        seen.add(rid)
        images = [resolve_inside(root, rec[k], where) for k in ("image_path1", "image_path2")]
        images_of += [(img, where) for img in images]
        records.append(
            {
                **{k: rec[k] for k in FIELDS},
                "id": rid,
                "task": task,
                "image_paths": [str(p) for p in images],
            }
        )
    if check_images:
        validate_images(images_of)
    return stamp_fingerprint(records, [path], lambda r: {k: r[k] for k in FIELDS})


def snapshot_root(repo_id: str) -> Path:
    """Download (or reuse) the hub dataset and unpack image archives next to the JSON files."""
    try:
        from huggingface_hub import snapshot_download

        root = Path(snapshot_download(repo_id=repo_id, repo_type="dataset"))
    except Exception as e:  # network, auth, missing repo: one clear message
        raise DataError(
            f"no MIS data root: set MIS_DATA_ROOT to a local copy of {repo_id} "
            f"(mis_<split>.json + <split>_image/), or make the hub reachable ({type(e).__name__}: {e})"
        ) from None
    for archive in root.glob("*_image*.zip"):
        target = root / archive.stem.split(".")[0]
        if not target.exists():
            with zipfile.ZipFile(archive) as z:
                z.extractall(root)
    return root


def load_task_docs(
    task: str, root: str | Path | None = None, dataset_kwargs: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Records of `mis_<split>[_<variant>]` by id, from `root`, dataset_kwargs/MIS_DATA_ROOT, or the hub.

    Each record names its attribution `variant` (what the model is shown; variants.py), so
    per-sample records and viewers can tell the variants apart.
    """
    kwargs = dataset_kwargs or {}
    if "split" in kwargs:
        split, variant = kwargs["split"], kwargs.get("variant", "both")
    else:
        split, variant = parse_task(task)
    if variant not in VARIANTS:
        known = ", ".join(VARIANTS)
        raise DataError(f"{task}: unknown attribution variant {variant!r}; expected one of {known}")
    base = data_root(ENV_ROOT, dataset_kwargs, root) or snapshot_root(HUB_DATASET)
    records = [{**r, "variant": variant} for r in load_split(base, split, task=task)]
    return remember(task, records)
