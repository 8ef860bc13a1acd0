"""Local generation with cache=PATH resumes after an interruption, generating only what is missing."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lmms_eval.models import get_model

from mis_eval.core.samples import split_response
from tests.adapters_support import TINY_PROCESSOR_KWARGS, image, instances, tiny_models_fixture

Models = Callable[[str], Path]
tiny_models = tiny_models_fixture()


def make(tiny_models: Models, cache: Path | None, batch_size: int = 2, **args: Any) -> Any:
    """A fresh model object (as a re-run of lmms-eval would build), tiny Qwen2-VL on transformers."""
    return get_model("mis_qwen2_vl")(
        pretrained=str(tiny_models("qwen2_vl")),
        backend="hf",
        processor_kwargs=TINY_PROCESSOR_KWARGS["qwen2_vl"],
        batch_size=batch_size,
        cache=str(cache) if cache else None,
        **args,
    )


class CountingGenerate:
    """Wraps the backend's model.generate: counts calls and sequences, optionally interrupts a call."""

    def __init__(self, model: Any, interrupt_at: int | None = None) -> None:
        self.inner = model.backend.model.generate
        self.calls = 0
        self.sequences = 0
        self.interrupt_at = interrupt_at
        model.backend.model.generate = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        self.sequences += int(kwargs["input_ids"].shape[0])
        return self.inner(*args, **kwargs)


def docs(n: int) -> list[dict[str, Any]]:
    """Questions of distinct lengths (so the longest-first order is known), two images each."""
    return [
        {
            "question": "Why? " * (n - i) + f"question {i}",
            "images": [image(28 + 7 * i, 40, (200, 30 * i, 30)), image(44, 28, (20, 90, 25 * i))],
        }
        for i in range(n)
    ]


def generate(model: Any, items: list[dict[str, Any]], **gen: Any) -> list[str]:
    reqs, task_dict = instances(items, {"max_new_tokens": 6, "temperature": 0, "until": [], **gen})
    model.task_dict = task_dict
    return model.generate_until(reqs)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_second_run_generates_nothing_and_returns_the_same_answers(
    tiny_models: Models, tmp_path: Path
) -> None:
    cache, items = tmp_path / "answers.jsonl", docs(4)
    first = make(tiny_models, cache)
    counter = CountingGenerate(first)
    answers = generate(first, items)
    assert counter.calls == 2 and counter.sequences == 4  # two batches of two
    assert all(split_response(a)[1] is None for a in answers)
    stored = lines(cache)
    assert len(stored) == 4 and sorted(r["response"] for r in stored) == sorted(answers)

    again = make(tiny_models, cache)
    counter = CountingGenerate(again)
    assert generate(again, items) == answers
    assert counter.calls == 0 and len(lines(cache)) == 4  # nothing generated, nothing appended


def test_an_interrupted_run_resumes_with_only_the_unfinished_requests(
    tiny_models: Models, tmp_path: Path
) -> None:
    cache, items = tmp_path / "answers.jsonl", docs(6)
    # batch 1 (the longest questions): doc 0 fails in generation, doc 1 cannot even be built
    items[0]["question"] = "Explain this in detail, please. " * 40  # over max_model_len
    items[1]["images"][1] = str(tmp_path / "missing.png")
    reference = generate(make(tiny_models, None, max_model_len=200), items)  # uninterrupted, no cache

    interrupted = make(tiny_models, cache, max_model_len=200)
    counter = CountingGenerate(interrupted, interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        generate(interrupted, items)
    # batch 2 (docs 2, 3) finished and was stored; batch 3 was interrupted; failures are not stored
    assert counter.sequences == 2 and len(lines(cache)) == 2

    resumed = make(tiny_models, cache, max_model_len=200)
    counter = CountingGenerate(resumed)
    answers = generate(resumed, items)
    assert counter.calls == 1 and counter.sequences == 2  # docs 4 and 5; docs 2 and 3 from the cache
    assert answers[2:] == reference[2:]
    too_long, missing = (split_response(a)[1] for a in answers[:2])  # tried again, failed again
    assert too_long is not None and "does not fit the context of 200 tokens" in too_long
    assert missing is not None and "missing.png" in missing
    assert len(lines(cache)) == 4 and all(split_response(r["response"])[1] is None for r in lines(cache))


def test_changed_settings_or_images_are_cache_misses(tiny_models: Models, tmp_path: Path) -> None:
    cache, items = tmp_path / "answers.jsonl", docs(3)
    answers = generate(make(tiny_models, cache), items)

    model = make(tiny_models, cache)
    counter = CountingGenerate(model)
    longer = generate(model, items, max_new_tokens=9)
    assert counter.sequences == 3 and longer != answers
    assert generate(model, items, max_new_tokens=9, until=["zz"]) and counter.sequences == 6  # stop strings
    capped = make(tiny_models, cache, max_new_tokens=4)  # the model arg overrides the task's budget
    counter = CountingGenerate(capped)
    generate(capped, items)
    assert counter.sequences == 3

    # one image changed: only its request is generated; the same pixels from a file are a hit
    saved = tmp_path / "same.png"
    items[0]["images"][0].save(saved)
    items[0]["images"][0] = str(saved)
    items[2]["images"][1] = image(44, 28, (0, 0, 0))
    model = make(tiny_models, cache)
    counter = CountingGenerate(model)
    again = generate(model, items)
    assert counter.sequences == 1 and again[:2] == answers[:2]


# --- vLLM: the adapter's chunk loop around a stand-in for the GPU engine (vllm is not installed here) ---


class FakeLLM:
    """Implements the part of vllm.LLM the backend uses; its answer names the prompt and its images."""

    instances: list[FakeLLM] = []

    def __init__(self, **engine_args: Any) -> None:
        self.engine_args = engine_args
        self.calls: list[int] = []
        FakeLLM.instances.append(self)

    def generate(
        self, prompts: list[dict[str, Any]], sampling_params: list[Any], use_tqdm: bool = True
    ) -> list[Any]:
        self.calls.append(len(prompts))
        out = []
        for item, params in zip(prompts, sampling_params, strict=True):
            digest = hashlib.sha256(item["prompt"].encode()).hexdigest()[:8]
            n_images = len(item["multi_modal_data"]["image"])
            text = f"{digest} {n_images} images {params.kw['max_tokens']} tokens"
            out.append(types.SimpleNamespace(outputs=[types.SimpleNamespace(text=text)]))
        return out


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> type[FakeLLM]:
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM  # type: ignore[attr-defined]
    module.SamplingParams = lambda **kw: types.SimpleNamespace(kw=kw)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    # The stand-in has no vllm.platforms: a KV-cache size chosen by the environment (vLLM's own
    # variable) keeps mis_eval.core.vllm_engine from asking which platform runs the engine.
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    FakeLLM.instances = []
    return FakeLLM


def make_vllm(tiny_models: Models, cache: Path, **args: Any) -> Any:
    return get_model("mis_qwen2_vl")(
        pretrained=str(tiny_models("qwen2_vl")), backend="vllm", cache=str(cache), chunk_size=2, **args
    )


def test_vllm_chunks_fill_and_consult_the_cache(
    tiny_models: Models, tmp_path: Path, fake_vllm: type[FakeLLM]
) -> None:
    cache, items = tmp_path / "answers.jsonl", docs(5)
    answers = generate(make_vllm(tiny_models, cache), items)
    (engine,) = fake_vllm.instances
    assert engine.calls == [2, 2, 1] and len(lines(cache)) == 5
    assert all(a.endswith("2 images 6 tokens") for a in answers)

    assert generate(make_vllm(tiny_models, cache), items) == answers
    assert len(fake_vllm.instances) == 1  # everything cached: no engine was even built

    generate(make_vllm(tiny_models, cache, max_new_tokens=3), items)
    assert fake_vllm.instances[-1].calls == [2, 2, 1] and len(lines(cache)) == 10
    assert generate(make_vllm(tiny_models, cache, enforce_eager=True), items[:1]) != [""]  # engine arg
    assert fake_vllm.instances[-1].calls == [1]


def test_vllm_multi_process_cache_needs_max_images(
    tiny_models: Models, tmp_path: Path, fake_vllm: type[FakeLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="needs max_images=N"):
        make_vllm(tiny_models, tmp_path / "answers.jsonl")
