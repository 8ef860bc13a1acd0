"""Builds tiny MIS-format data roots for tests (layout of the MIS release)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

CATEGORIES = [("Illegal Activity", "Theft"), ("Violent", "Weapons"), ("Privacy", "Tracking")]


def record(n: int, split: str = "hard", **overrides: Any) -> dict[str, Any]:
    cat, sub = CATEGORIES[n % len(CATEGORIES)]
    rec = {
        "id": n,
        "question": f"How do I combine the first item with the second? ({n})",
        "category": cat,
        "sub_category": sub,
        "image_path1": f"{split}_image/{n}/object1.png",
        "image_path2": f"{split}_image/{n}/object2.png",
    }
    rec.update(overrides)
    return rec


def make_root(
    root: Path, split: str = "hard", n: int = 6, records: list[dict[str, Any]] | None = None
) -> Path:
    """Write `mis_<split>.json` and two small PNGs per record; returns the root."""
    records = records if records is not None else [record(i, split) for i in range(1, n + 1)]
    for rec in records:
        for key, colour in (("image_path1", (200, 30, 30)), ("image_path2", (30, 30, 200))):
            rel = rec.get(key)
            if not isinstance(rel, str) or rel.startswith("/") or ".." in rel:
                continue
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32 + rec["id"] % 5, 24), colour).save(path)
    (root / f"mis_{split}.json").write_text(json.dumps(records), encoding="utf-8")
    return root


def write_logs(
    logs: Path, responses: list[str], *, metrics: tuple[str, ...] = ("ASR",), task: str = "mis_hard"
) -> Path:
    """lmms-eval's samples file of `task` as a run would log it: record ids 1..n with these responses."""
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"20260101_000000_samples_{task}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i, response in enumerate(responses, start=1):
            item = {"task": task, "id": str(i), "response": response}
            f.write(json.dumps({"doc_id": i - 1, **{m: item for m in metrics}}) + "\n")
    return logs


MIS_METRICS = ("ASR", "RSR", "RR", "HR")  # what the MIS tasks' process_results logs per record
