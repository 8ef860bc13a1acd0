"""Shared pieces of the model-adapter tests: tiny checkpoints, lmms-eval requests, images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lmms_eval.api.instance import Instance
from PIL import Image

from mis_eval.testing.tiny import build_tiny

# Small images keep the tiny models at a few dozen vision tokens per image.
TINY_PROCESSOR_KWARGS: dict[str, dict[str, Any]] = {
    "qwen2_vl": {"size": {"shortest_edge": 4 * 28 * 28, "longest_edge": 16 * 28 * 28}},
    "idefics3": {"size": {"longest_edge": 56}},
}
HF_FAMILIES = ("qwen2_vl", "llava_onevision", "llava_interleave", "idefics3", "internvl2_5")


_BUILT: dict[str, Path] = {}


def tiny_models_fixture() -> Any:
    """A session fixture `tiny_models`: family -> path of its tiny random checkpoint, built once per
    test session (into tmp_path_factory) on first use. Assign it in a test module:
    `tiny_models = tiny_models_fixture()`."""

    @pytest.fixture(scope="session")
    def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
        def get(family: str) -> Path:
            if family not in _BUILT:
                _BUILT[family] = build_tiny(family, tmp_path_factory.mktemp(f"tiny_{family}"))
            return _BUILT[family]

        return get

    return tiny_models


def image(width: int, height: int, colour: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (width, height), colour)


def instances(
    docs: list[dict[str, Any]], gen_kwargs: dict[str, Any] | None = None, task: str = "t", split: str = "test"
) -> tuple[list[Instance], dict[str, Any]]:
    """generate_until Instances over `docs` (each with "question" and "images"), and the
    task_dict lmms-eval would attach to the model."""

    def doc_to_visual(doc: dict[str, Any]) -> Any:
        return doc["images"]

    kwargs = gen_kwargs if gen_kwargs is not None else {"max_new_tokens": 8, "temperature": 0, "until": []}
    reqs = [
        Instance(
            request_type="generate_until",
            idx=0,
            arguments=(doc["question"], dict(kwargs), doc_to_visual, i, task, split),
            metadata={"task": task, "doc_id": i, "repeats": 1},
        )
        for i, doc in enumerate(docs)
    ]
    return reqs, {task: {split: docs}}
