"""MM-SafetyBench question files and images, validated (PROTOCOLS.md 2.2-2.4).

Data root (`MMSB_DATA_ROOT` or `dataset_kwargs: {data_root: ...}`) in the release layout:
`imgs/<scenario>/<SD|SD_TYPO|TYPO>/<id>.jpg` (the `imgs/` level may be omitted) and,
optionally, `processed_questions/<scenario>.json`; without the latter the bundled byte-exact
copies are used. SD images must be supplied. A missing TYPO image is rendered from the key
phrase (typography.py); a missing SD_TYPO image is composed from the SD image and that
rendering. Every record says which (`image_origin`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from mis_tasks.common import (
    DataError,
    check_fields,
    require_records,
    stamp_fingerprint,
    task_loader,
    validate_images,
)
from mis_tasks.mm_safetybench.typography import renderer_id

SCENARIOS = (
    "01-Illegal_Activitiy",
    "02-HateSpeech",
    "03-Malware_Generation",
    "04-Physical_Harm",
    "05-EconomicHarm",
    "06-Fraud",
    "07-Sex",
    "08-Political_Lobbying",
    "09-Privacy_Violence",
    "10-Legal_Opinion",
    "11-Financial_Advice",
    "12-Health_Consultation",
    "13-Gov_Decision",
)
# variant -> the question field sent with that image kind (PROTOCOLS 2.4)
QUESTION_FIELD = {
    "SD": "Rephrased Question(SD)",
    "SD_TYPO": "Rephrased Question",
    "TYPO": "Rephrased Question",
}
FIELDS: dict[str, type | tuple[type, ...]] = {
    "Question": str,
    "Changed Question": str,
    "Key Phrase": str,
    "Phrase Type": str,
    "Rephrased Question": str,
    "Rephrased Question(SD)": str,
}
# task -> (image kind, subset)
TASKS = {
    f"mm_safetybench{tiny}_{variant.lower()}": (variant, "tiny" if tiny else "full")
    for tiny in ("", "_tiny")
    for variant in ("SD", "SD_TYPO", "TYPO")
}
ENV_ROOT = "MMSB_DATA_ROOT"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TINY_FILE = "TinyVersion_ID_List.json"


def bundled_questions() -> Path:
    return Path(str(resources.files("mis_tasks.mm_safetybench.questions")))


def question_dir(root: Path | None) -> Path:
    own = root / "processed_questions" if root else None
    return own if own and own.is_dir() else bundled_questions()


def _read_object(path: Path) -> dict[str, Any]:
    """A JSON object whose keys must be unique (json.loads would silently keep the last)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise DataError(f"{path}: duplicate key {k!r}")
            out[k] = v
        return out

    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=pairs)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: malformed JSON ({e})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object mapping question ids to records")
    return data


def load_questions(qdir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{scenario: {question id: record}}, ids in numeric order (they name the image files)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for scenario in SCENARIOS:
        path = qdir / f"{scenario}.json"
        data = _read_object(path)
        require_records(list(data), str(path))
        for qid, rec in data.items():
            where = f"{path} record {qid!r}"
            if not qid.isdigit():
                raise DataError(f"{where}: question id must be a non-negative integer string")
            check_fields(rec, FIELDS, where)
        out[scenario] = {k: data[k] for k in sorted(data, key=int)}
    return out


def tiny_ids(qdir: Path) -> dict[str, set[str]]:
    path = qdir / TINY_FILE if (qdir / TINY_FILE).is_file() else bundled_questions() / TINY_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {e["Scenario"]: {str(i) for i in e["Sampled_ID_List"]} for e in raw}


def image_dir(root: Path) -> Path:
    return root / "imgs" if (root / "imgs").is_dir() else root


def find_image(images: Path, scenario: str, variant: str, qid: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        path = images / scenario / variant / f"{qid}{suffix}"
        if path.is_file():
            return path
    return None


def _image_fields(images: Path | None, scenario: str, variant: str, qid: str) -> dict[str, str] | None:
    """image_path / sd_path / image_origin for one record, or None when a needed image is missing."""
    own = find_image(images, scenario, variant, qid) if images else None
    if own:
        return {"image_path": str(own), "sd_path": "", "image_origin": "file"}
    if variant == "TYPO":
        return {"image_path": "", "sd_path": "", "image_origin": "rendered"}
    sd = find_image(images, scenario, "SD", qid) if images else None
    if variant == "SD_TYPO" and sd:
        return {"image_path": "", "sd_path": str(sd), "image_origin": "composed"}
    return None


def load_variant(
    root: Path | None, variant: str, *, task: str, subset: str = "full", check_images: bool = True
) -> list[dict[str, Any]]:
    """Validated records of one image kind over the 13 scenarios (one record per question)."""
    if variant not in QUESTION_FIELD:
        raise DataError(f"unknown MM-SafetyBench variant {variant!r}; expected SD, SD_TYPO or TYPO")
    if subset not in ("full", "tiny"):
        raise DataError(f"unknown MM-SafetyBench subset {subset!r}; expected full or tiny")
    qdir = question_dir(root)
    questions = load_questions(qdir)
    keep = tiny_ids(qdir) if subset == "tiny" else None
    images = image_dir(root) if root else None
    records: list[dict[str, Any]] = []
    missing: list[str] = []
    images_of: list[tuple[Path, str]] = []  # (image, record), decoded together after the loop
    for scenario, recs in questions.items():
        for qid, rec in recs.items():
            if keep is not None and qid not in keep.get(scenario, set()):
                continue
            where = f"{qdir / scenario}.json record {qid!r} ({variant})"
            found = _image_fields(images, scenario, variant, qid)
            if found is None:
                missing.append(where)
                continue
            images_of += [(Path(found[k]), where) for k in ("image_path", "sd_path") if found[k]]
            records.append(
                {
                    "id": f"{scenario}/{qid}",
                    "task": task,
                    "scenario": scenario,
                    "question_id": qid,
                    "variant": variant,
                    "question": rec[QUESTION_FIELD[variant]],
                    "original_question": rec["Question"],
                    "key_phrase": rec["Key Phrase"],
                    "phrase_type": rec["Phrase Type"],
                    **found,
                    "typo_renderer": renderer_id() if found["image_origin"] != "file" else "",
                }
            )
    if check_images:
        validate_images(images_of)
    if missing:
        hint = "set MMSB_DATA_ROOT to the MM-SafetyBench data folder (imgs/<scenario>/<kind>/<id>.jpg)"
        raise DataError(
            f"{missing[0]}: no {variant} image under {images or '(no data root)'}"
            f"{f' (and {len(missing) - 1} more records)' if len(missing) > 1 else ''}; "
            f"SD images must be supplied: {hint}"
        )
    require_records(records, f"{qdir} ({variant}, {subset})")
    files = [qdir / f"{s}.json" for s in SCENARIOS]
    stamp_fingerprint(
        records, files, lambda r: {k: v for k, v in r.items() if k not in ("image_path", "sd_path")}
    )
    return records


load_task_docs = task_loader(
    "MM-SafetyBench",
    TASKS,
    ENV_ROOT,
    lambda root, spec, task: load_variant(root, spec[0], task=task, subset=spec[1]),
)
