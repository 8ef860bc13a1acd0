"""MIR-SafetyBench records in the release layout, checked record by record before anything runs.

The release (thu-coai/MIR-SafetyBench's extract_data.py, from the hub dataset) is one folder per
risk category, each holding `<Relation>_final.json` (a JSON array of records) and the images under
`images/<Relation>/`, paths relative to the category folder:

    <root>/Violence/Analogy_final.json
    <root>/Violence/images/Analogy/Analogy_12_0.png ...

`MIR_DATA_ROOT` (or `dataset_kwargs: {data_root: ...}`) names the root; without one, the hub dataset
`thu-coai/MIR-SafetyBench` is read with `datasets` and written out once in this layout (under
`$MIS_EVAL_CACHE`'s folder, default ~/.cache/mis-eval) and then read like a local root. Every record's
schema, 2-4 image paths (inside the data root) and images (decoded in full) are checked first: a path
that does not exist stops the run with an error naming file and record, where the reference code
silently drops it (models/qwen2_5_VL_3B.py L98) and asks the model about fewer images.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
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
from mis_tasks.mir_safetybench.variants import (
    DEFAULT,
    GROUP,
    MAX_IMAGES,
    MIN_IMAGES,
    RELATION_TASKS,
    VARIANTS,
    parse_task,
    relation_name,
)

ENV_ROOT = "MIR_DATA_ROOT"
HUB_DATASET = "thu-coai/MIR-SafetyBench"

# The record schema of the release (README "Dataset Fields"; extract_data.py writes exactly these).
FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": (int, str),
    "original_question": str,
    "relationship_type": str,
    "revised_prompt": str,
    "image_descriptions": (list, str, dict),
    "image_keywords": (list, str, dict),
    "images": list,
    "iteration": (int, str),
}


def relation_file(category_dir: Path, relation: str) -> Path:
    return category_dir / f"{relation}_final.json"


def relation_files(root: Path, relation: str) -> list[Path]:
    """`<category>/<relation>_final.json` of every category folder that has one, in name order."""
    files = sorted(relation_file(d, relation) for d in root.iterdir() if d.is_dir())
    files = [f for f in files if f.is_file()]
    if not files:
        raise DataError(
            f"{root}: no {relation}_final.json in any category folder (expected the release layout "
            f"<category>/{relation}_final.json, e.g. Violence/{relation}_final.json)"
        )
    return files


def _record(root: Path, path: Path, i: int, rec: Any, relation: str) -> dict[str, Any]:
    category = path.parent.name
    where = f"{path} record #{i}" + (f" (id={rec.get('id')})" if isinstance(rec, dict) else "")
    check_fields(rec, FIELDS, where)
    if relation_name(rec["relationship_type"]) != relation:
        raise DataError(f"{where}: relationship_type {rec['relationship_type']!r} in the file of {relation}")
    images = rec["images"]
    if not MIN_IMAGES <= len(images) <= MAX_IMAGES:
        raise DataError(f"{where}: {len(images)} images; a record has {MIN_IMAGES}-{MAX_IMAGES}")
    if not all(isinstance(p, str) for p in images):
        raise DataError(f"{where}: every entry of 'images' should be a path string")
    # the reference joins each path onto the record file's folder (eval.py build_image_paths)
    resolved = [resolve_inside(root, f"{category}/{p}", where) for p in images]
    return {
        "id": f"{category}/{rec['id']}",
        "source_id": str(rec["id"]),
        "category": category,
        "relation": relation,
        "original_question": rec["original_question"],
        "revised_prompt": rec["revised_prompt"],
        "iteration": str(rec["iteration"]),
        "image_paths": [str(p) for p in resolved],
        "n_images": len(resolved),
        "_content": {**{k: rec[k] for k in FIELDS}, "category": category},
        "_where": where,
    }


def load_relation(root: Path, relation: str, *, check_images: bool = True) -> list[dict[str, Any]]:
    """Validated records of one relation over every category folder; ids are `<category>/<id>`."""
    files = relation_files(root, relation)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in files:
        raw = read_json(path)
        if not isinstance(raw, list):
            raise DataError(f"{path}: expected a JSON array of records, got {type(raw).__name__}")
        require_records(raw, str(path))
        for i, rec in enumerate(raw):
            doc = _record(root, path, i, rec, relation)
            if doc["id"] in seen:
                raise DataError(f"{path} record #{i}: duplicate id {rec['id']} in {path.parent.name}")
            seen.add(doc["id"])
            records.append(doc)
    if check_images:  # all at once: in parallel, through the validated-file cache
        validate_images((Path(p), r["_where"]) for r in records for p in r["image_paths"])
    stamp_fingerprint(records, files, lambda r: r["_content"])
    for r in records:
        del r["_content"], r["_where"]
    return records


def variant_docs(records: Iterable[dict[str, Any]], task: str, variant: str) -> list[dict[str, Any]]:
    """The task's samples: one per record, or (`single`) one per record and image position."""
    out = []
    for r in records:
        base = {**r, "task": task, "variant": variant, "item_id": r["id"]}
        if variant != "single":
            out.append(base)
            continue
        for k in range(1, r["n_images"] + 1):
            out.append({**base, "id": f"{r['id']}#{k}", "position": k})
    return out


def cache_dir() -> Path:
    base = os.environ.get("MIS_EVAL_CACHE")
    return Path(base).expanduser().parent if base else Path.home() / ".cache" / "mis-eval"


def materialize(dataset: Any, out: Path) -> Path:
    """Write a hub copy (rows: category, relationship_type, id, ..., images = decoded PIL images)
    in the release layout, as extract_data.py does: `<category>/<relation>_final.json` and
    `<category>/images/<relation>/<relation>_<id>_<k>.png`. Marked complete only at the end."""
    done = out / ".complete"
    if done.is_file():
        return out
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in dataset:
        category, relation = str(row["category"]), relation_name(str(row["relationship_type"]))
        folder = out / category / "images" / relation
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for k, image in enumerate(row["images"][: int(row.get("num_images") or len(row["images"]))]):
            name = f"{relation}_{row['id']}_{k}.png"
            image.save(folder / name)
            paths.append(f"images/{relation}/{name}")
        fields = ("original_question", "revised_prompt", "image_descriptions", "image_keywords", "iteration")
        entry = {"id": row["id"], "relationship_type": relation, **{k: row[k] for k in fields}}
        entry["images"] = paths
        groups.setdefault((category, relation), []).append(entry)
    for (category, relation), entries in groups.items():
        text = json.dumps(entries, ensure_ascii=False, indent=2)
        relation_file(out / category, relation).write_text(text, encoding="utf-8")
    done.write_text("")
    return out


def hub_root(repo_id: str = HUB_DATASET) -> Path:
    """The hub dataset in the release layout (downloaded and written out once)."""
    try:
        import datasets

        dataset = datasets.load_dataset(repo_id, split="train")
    except Exception as e:  # network, auth, missing repo: one clear message
        raise DataError(
            f"no MIR-SafetyBench data root: set {ENV_ROOT} to a local copy in the release layout "
            f"(<category>/<Relation>_final.json + images/), or make the hub reachable "
            f"({type(e).__name__}: {e})"
        ) from None
    return materialize(dataset, cache_dir() / "mir_safetybench" / str(dataset._fingerprint))


def load_task_docs(
    task: str, root: str | Path | None = None, dataset_kwargs: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Records of `mir_<relation>[_<variant>]` by id (for the group name: every relation's records),
    from `root`, dataset_kwargs' data_root, MIR_DATA_ROOT, or the hub."""
    base = data_root(ENV_ROOT, dataset_kwargs, root) or hub_root()
    if task == GROUP:
        docs = []
        for t in RELATION_TASKS:
            docs += variant_docs(load_relation(base, parse_task(t)[0]), t, DEFAULT)
        return remember(task, [{**d, "id": f"{d['relation']}/{d['id']}"} for d in docs])
    try:
        relation, variant = parse_task(task)
    except ValueError as e:
        raise DataError(str(e)) from None
    if variant not in VARIANTS:
        raise DataError(f"{task}: unknown variant {variant!r}")
    return remember(task, variant_docs(load_relation(base, relation), task, variant))
