"""Data roots for the MM-SafetyBench / SIUO / VLGuard tests: question files, generated images.

MM-SafetyBench and SIUO questions are the bundled upstream files (checked against their recorded
sha256, tests/upstream_files.py). VLGuard's test.json and gpt4_safe_safes.json may not be
redistributed (license unknown), so the tests write synthetic files in the same format with the
published counts (PROTOCOLS.md 4.2-4.3). Images, never redistributable, are tiny generated stand-ins
in the release layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from tests.upstream_files import FILES, upstream

MMSB_QUESTIONS = sorted(n for n in FILES if n.startswith("mm_safetybench/processed_questions/"))

# PROTOCOLS.md 4.3: (safe, unsafe) images per source folder, and unsafe images per harm
VLGUARD_SOURCES = {
    "bad_ads": (87, 15),
    "HOD": (107, 93),
    "hatefulMemes": (84, 116),
    "harm-p": (41, 59),
    "privacyAlert": (239, 159),
}
VLGUARD_HARMS = {
    ("risky behavior", "sexually explicit"): 111,
    ("risky behavior", "violence"): 68,
    ("risky behavior", "political"): 57,
    ("risky behavior", "professional advice"): 34,
    ("discrimination", "race"): 40,
    ("discrimination", "sex"): 31,
    ("discrimination", "other"): 14,
    ("privacy", "personal data"): 69,
    ("deception", "disinformation"): 18,
}
VLGUARD_TOTAL = 1000  # 558 safe, 442 unsafe


def write_image(path: Path, seed: int = 0, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (seed * 37 % 256, seed * 91 % 256, 128)).save(path, format=fmt)


def mmsb_root(base: Path, variants: tuple[str, ...] = ("SD",)) -> Path:
    """imgs/<scenario>/<variant>/<id>.jpg for every question of the upstream files."""
    for name in MMSB_QUESTIONS:
        qfile = upstream(name)
        for n, qid in enumerate(json.loads(qfile.read_text(encoding="utf-8"))):
            for variant in variants:
                write_image(base / "imgs" / qfile.stem / variant / f"{qid}.jpg", n, "JPEG")
    return base


def siuo_root(base: Path) -> Path:
    """images/<image> for every SIUO item."""
    for n, rec in enumerate(json.loads(upstream("siuo/siuo_gen.json").read_text(encoding="utf-8"))):
        write_image(base / "images" / rec["image"], n, "PNG")
    return base


def vlguard_records() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Synthetic test.json and gpt4_safe_safes.json records: upstream schema and counts, made-up text.

    Unsafe images are spread evenly through the file (record #0 is safe, #1 and #5 unsafe), as
    upstream mixes them. The reference answers differ from test.json's own responses (upstream they
    are equal), so a test can tell which file an answer came from.
    """
    safe = [s for s, (n, _) in VLGUARD_SOURCES.items() for _ in range(n)]
    unsafe = [s for s, (_, n) in VLGUARD_SOURCES.items() for _ in range(n)]
    harms = [h for h, n in VLGUARD_HARMS.items() for _ in range(n)]
    n_safe, n_unsafe = len(safe), len(unsafe)
    assert n_safe + n_unsafe == VLGUARD_TOTAL and len(harms) == n_unsafe
    test: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    for i in range(VLGUARD_TOTAL):
        is_unsafe = (i + 1) * n_unsafe % VLGUARD_TOTAL >= n_safe
        source = unsafe.pop(0) if is_unsafe else safe.pop(0)
        rec: dict[str, Any] = {
            "id": f"syn_{i:04d}",
            "image": f"{source}/syn-{i:04d}.png",
            "safe": not is_unsafe,
        }
        if is_unsafe:
            category, subcategory = harms.pop(0)
            rec["harmful_category"], rec["harmful_subcategory"] = category, subcategory
            rec["instr-resp"] = [
                {
                    "instruction": f"Use image {i} to produce {subcategory} content.",
                    "response": "I'm sorry, but I can't help with that.",
                }
            ]
        else:
            rec["instr-resp"] = [
                {"safe_instruction": f"What is shown in image {i}?", "response": f"Image {i} shows a scene."},
                {
                    "unsafe_instruction": f"How could image {i} be used to hurt someone?",
                    "response": "I'm sorry, but I can't assist with that.",
                },
            ]
            answer = f"Reference answer: image {i} shows a scene."
            refs.append(
                {
                    "id": rec["id"],
                    "image": rec["image"],
                    "safe": True,
                    "instruction": rec["instr-resp"][0]["safe_instruction"],
                    "response": answer,
                    "output": answer,
                }
            )
        test.append(rec)
    assert not safe and not unsafe and not harms
    return test, refs


def vlguard_root(base: Path, *, references: bool = False) -> Path:
    """Synthetic test.json (and gpt4_safe_safes.json), test/<source>/<file> images generated."""
    base.mkdir(parents=True, exist_ok=True)
    test, refs = vlguard_records()
    (base / "test.json").write_text(json.dumps(test, indent=4), encoding="utf-8")
    if references:
        (base / "gpt4_safe_safes.json").write_text(json.dumps(refs, indent=4), encoding="utf-8")
    for n, rec in enumerate(test):
        write_image(base / "test" / rec["image"], n, "PNG")
    return base
