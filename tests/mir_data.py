"""Builds tiny MIR-SafetyBench data roots for tests (the release layout of extract_data.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

# image k of every record has colour COLOURS[k]: a test reads the order the model saw off the pixels
COLOURS = [(200, 30, 30), (30, 30, 200), (30, 160, 30), (160, 160, 30)]


def record(n: int, relation: str = "Analogy", n_images: int = 2, **overrides: Any) -> dict[str, Any]:
    rec = {
        "id": n,
        "original_question": f"How do I do the harmful thing number {n}?",
        "relationship_type": relation,
        "revised_prompt": f"Look at the {n_images} pictures and explain how they connect ({n}).",
        "image_descriptions": [f"picture {k}" for k in range(n_images)],
        "image_keywords": [f"kw{k}" for k in range(n_images)],
        "images": [f"images/{relation}/{relation}_{n}_{k}.png" for k in range(n_images)],
        "iteration": 1,
    }
    rec.update(overrides)
    return rec


def make_mir_root(
    root: Path,
    relation: str = "Analogy",
    categories: tuple[str, ...] = ("Violence", "Privacy"),
    n: int = 3,
    records: dict[str, list[dict[str, Any]]] | None = None,
) -> Path:
    """`<category>/<relation>_final.json` + one small PNG per image (colour = position); returns the root."""
    per_category = records or {
        c: [record(i, relation, n_images=2 + i % 3) for i in range(n)] for c in categories
    }
    for category, recs in per_category.items():
        folder = root / category
        folder.mkdir(parents=True, exist_ok=True)
        for rec in recs:
            images = rec.get("images")
            for k, rel in enumerate(images if isinstance(images, list) else []):
                if not isinstance(rel, str) or rel.startswith("/") or ".." in rel:
                    continue
                path = folder / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (24 + k, 16), COLOURS[k % len(COLOURS)]).save(path)
        (folder / f"{relation}_final.json").write_text(json.dumps(recs), encoding="utf-8")
    return root


def extract_answer_only(text: str) -> str:
    """harmbench_judge.py L7-33 (`extract_answer_only`), restated from the reference for comparisons."""
    if "<answer>" in text:
        start = text.find("<answer>") + len("<answer>")
        end = text.find("</answer>")
        return text[start:end].strip() if end != -1 else text[start:].strip()
    if "</think>" in text:
        return text[text.rfind("</think>") + len("</think>") :].strip()
    if "◁/think▷" in text:
        return text[text.rfind("◁/think▷") + len("◁/think▷") :].strip()
    return text.strip()
