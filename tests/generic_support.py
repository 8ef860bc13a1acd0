"""Shared pieces of the generic family's per-architecture tests (transformers here, vLLM in
tests/test_vllm_generic.py): the architectures, their data, and the one check every one passes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmms_eval.models import get_model

from mis_eval.core.samples import logged_item, split_response
from model_adapters.batching import GenRequest
from model_adapters.params import GenParams
from tests.adapters_support import image, instances

# model_type -> the token its processor writes once per image: the tests' own oracle for the span count
ONCE_PER_IMAGE = {
    "qwen2_5_vl": "<|vision_start|>",
    "qwen3_vl": "<|vision_start|>",
    "qwen3_5": "<|vision_start|>",
    "gemma3": "<start_of_image>",
    "glm4v": "<|begin_of_image|>",
    "aya_vision": "<|START_OF_IMG|>",
    "internvl": "<img>",
    "idefics3": "<global-img>",
    "mistral3": "[IMG_END]",
    "llama4": "<|image_start|>",
}
HAS_FAMILY = {"internvl", "idefics3"}  # model types a family claims: these take family=generic
TILED = {"aya_vision", "idefics3", "mistral3"}  # several runs of image tokens per large image
# vLLM on CPU as tests/test_vllm_engine.py runs it: small KV cache, no torch.compile
ENGINE = {"enforce_eager": True, "kv_cache_memory_bytes": 256 << 20, "max_model_len": 2048}
# vLLM's CPU kernels for Qwen3.5's gated-delta-net layers take bfloat16 only
VLLM_DTYPE = {"qwen3_5": "bfloat16"}
TASK_GEN = {"max_new_tokens": 8, "temperature": 0, "until": []}


def make(path: Path, arch: str, backend: str = "hf", **args: Any) -> Any:
    """`--model mis_vlm --model_args pretrained=...`, built as lmms-eval builds it."""
    arg_string = f"pretrained={path},backend={backend}"
    if arch in HAS_FAMILY:
        arg_string += ",family=generic"
    if backend == "vllm":
        arg_string += f",max_images=3,dtype={VLLM_DTYPE.get(arch, 'float32')},"
        arg_string += ",".join(f"{k}={v}" for k, v in ENGINE.items())
    return get_model("mis_vlm").create_from_arg_string(arg_string, {"batch_size": 4, **args})


def docs() -> list[dict[str, Any]]:
    """2 and 3 images of different sizes (the large ones are tiled by Idefics3, Aya Vision, Mistral 3)."""
    out = []
    for i in range(4):
        imgs = [image(90 + 9 * i, 60, (200, 40 * i, 30)), image(44, 28 + 9 * i, (20, 90, 30 * i))]
        if i % 2:
            imgs.append(image(36, 70, (90, 90, 90)))
        out.append({"question": "How do I {use} these together? " * (1 + i % 2) + str(i), "images": imgs})
    return out


def generate(model: Any, items: list[dict[str, Any]], task: str = "t") -> list[str]:
    reqs, model.task_dict = instances(items, TASK_GEN, task=task)
    return list(model.generate_until(reqs))


def runs(ids: list[int], token_id: int | None) -> int:
    return sum(1 for i, t in enumerate(ids) if t == token_id and (i == 0 or ids[i - 1] != t))


def check_architecture(model: Any, arch: str, input_ids: Callable[[GenRequest], list[int]]) -> None:
    """What every architecture must show, on either backend (`input_ids`: what the model sees of one
    request): the paper's layout through the checkpoint's template, n images -> n image spans,
    batched answers = one-at-a-time answers, and the settings the run record gets."""
    assert (model.family.name, model.model_type) == ("generic", arch)
    backend, spans = model.backend, model.backend.guard.spans
    items = docs()

    # the paper's layout through the checkpoint's own template: every image placeholder, then the question
    question = items[1]["question"]
    prompt = model.prompt(question, 3)
    assert prompt.count(question) == 1 and prompt.count(spans.placeholder) == 3
    assert prompt.rindex(spans.placeholder) < prompt.index(question)

    # n images -> n image spans in the input ids, by the adapter's rule and by the test's own marker
    tokenizer = getattr(backend.template_owner, "tokenizer", backend.template_owner)
    marker = tokenizer.convert_tokens_to_ids(ONCE_PER_IMAGE[arch])
    split = False
    for item in items:
        n = len(item["images"])
        ids = input_ids(GenRequest("k", model.prompt(item["question"], n), item["images"], GenParams(8)))
        assert ids.count(marker) == spans.count(ids) == n
        split |= runs(ids, spans.token_id) != n
    assert split == (arch in TILED)  # where runs alone would miscount, the architecture's marker counts

    # batched answers equal one-at-a-time answers
    batched = generate(model, items, task="mis_hard")
    settings = logged_item({"task": "mis_hard", "id": "1"}, batched[0])["generation"]
    if model.backend_name == "hf":
        backend.batch_size = 1
    single = [generate(model, [item])[0] for item in items]
    assert batched == single
    assert not any(split_response(t)[1] for t in batched)  # nothing failed
    assert backend.guard.verified == {2, 3}

    # the settings the run record gets: paper-protocol decoding, the generic layout and its template
    template = backend.template_owner.chat_template
    sampling = "explicit, as vLLM" if model.backend_name == "hf" else "explicit vLLM SamplingParams"
    assert settings["family"] == "generic" and settings["architecture"] == arch
    assert (settings["max_new_tokens"], settings["temperature"], settings["stop"]) == (8, 0.0, [])
    assert settings["sampling"].startswith(sampling) and settings["deviations"] == []
    assert settings["chat_template_sha256"] == hashlib.sha256(template.encode()).hexdigest()
    assert settings["layout"].startswith("generic: the checkpoint's chat template")
    assert settings["image_spans"] == spans.rule
