"""The transformers backend on tiny random checkpoints of every family transformers can build."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lmms_eval.models import get_model

from mis_eval.core.samples import split_response
from model_adapters.adapter import MultiImageModel
from model_adapters.families import get_family
from model_adapters.hf_loading import CheckpointError
from tests.adapters_support import HF_FAMILIES, TINY_PROCESSOR_KWARGS, image, instances, tiny_models_fixture

Models = Callable[[str], Path]
tiny_models = tiny_models_fixture()


def make(tiny_models: Models, family: str, **args: Any) -> Any:
    """The family's lmms-eval model class, built the way lmms-eval builds it (string model args)."""
    cls = get_model(get_family(family).model_id)
    kwargs = TINY_PROCESSOR_KWARGS.get(family)
    arg_string = f"pretrained={tiny_models(family)},backend=hf"
    if kwargs:
        import json

        arg_string += f",processor_kwargs={json.dumps(kwargs)}"
    return cls.create_from_arg_string(arg_string, {"batch_size": args.pop("batch_size", 4), **args})


def docs(n: int = 4) -> list[dict[str, Any]]:
    """Questions of different lengths with 2 or 3 images of different sizes."""
    out = []
    for i in range(n):
        imgs = [image(30 + 9 * i, 40, (200, 20 * i, 30)), image(44, 28 + 5 * i, (20, 90, 10 * i))]
        if i % 2:
            imgs.append(image(36, 36, (90, 90, 90)))
        out.append({"question": "Which object is dangerous? " * (1 + i % 3) + str(i), "images": imgs})
    return out


def generate(model: Any, items: list[dict[str, Any]], **gen: Any) -> list[str]:
    reqs, task_dict = instances(items, gen or None)
    model.task_dict = task_dict
    return model.generate_until(reqs)


@pytest.mark.parametrize("family", HF_FAMILIES)
def test_batched_generation_equals_one_at_a_time(tiny_models: Models, family: str) -> None:
    model = make(tiny_models, family, batch_size=4)
    assert model.backend_name == "hf"
    items = docs(4)
    batched = generate(model, items)
    model.backend.batch_size = 1
    single = generate(model, items)
    assert batched == single
    assert all(split_response(t)[1] is None for t in batched)  # nothing failed


def test_images_reach_the_model_in_order(tiny_models: Models) -> None:
    model = make(tiny_models, "qwen2_vl")
    a, b = image(56, 56, (250, 10, 10)), image(84, 28, (10, 10, 250))
    q = "Describe the first image, then the second."
    forward, backward, text_only = generate(
        model,
        [{"question": q, "images": [a, b]}, {"question": q, "images": [b, a]}, {"question": q, "images": []}],
        max_new_tokens=12,
    )
    assert forward != backward and text_only not in (forward, backward)
    inputs = model.backend._encode([model.prompt(q, 2)] * 2, [[a, b], [b, a]])
    grids = inputs["image_grid_thw"].tolist()  # one row per image: (t, h/14, w/14) in prompt order
    assert grids == [[1, 4, 4], [1, 4, 8], [1, 4, 8], [1, 4, 4]]  # 84x28 is upscaled to min_pixels


def test_max_new_tokens_comes_from_the_task_unless_overridden(tiny_models: Models) -> None:
    model = make(tiny_models, "llava_interleave")
    item = [{"question": "Tell me a long story.", "images": [image(28, 28, (1, 2, 3))]}]
    n3 = generate(model, item, max_new_tokens=3, temperature=0)[0]
    n12 = generate(model, item, max_new_tokens=12, temperature=0)[0]
    assert len(n3) < len(n12)
    capped = make(tiny_models, "llava_interleave", max_new_tokens=3)
    assert generate(capped, item, max_new_tokens=12)[0] == n3


def test_a_prompt_longer_than_the_context_fails_alone(tiny_models: Models) -> None:
    model = make(tiny_models, "qwen2_vl", max_model_len=200)
    items = docs(3)
    items[1]["question"] = "Explain this in detail, please. " * 40
    out = generate(model, items)
    response, error = split_response(out[1])
    assert response is None and error is not None
    assert "t/test/1" in error and "does not fit the context of 200 tokens" in error
    assert all(split_response(out[i])[1] is None for i in (0, 2))


def test_a_doc_whose_images_cannot_load_fails_alone(tiny_models: Models, tmp_path: Path) -> None:
    model = make(tiny_models, "idefics3")
    items = docs(3)
    items[2]["images"] = [image(28, 28, (0, 0, 0)), str(tmp_path / "missing.png")]
    out = generate(model, items)
    assert split_response(out[0])[1] is None and split_response(out[1])[1] is None
    error = split_response(out[2])[1]
    assert error is not None and "t/test/2" in error and "missing.png" in error


def test_checkpoint_of_another_family_is_refused(tiny_models: Models) -> None:
    with pytest.raises(CheckpointError, match="is a 'llava_onevision' model, not a qwen2_vl one"):
        get_model("mis_qwen2_vl")(pretrained=str(tiny_models("llava_onevision")), backend="hf")


def test_processor_that_cannot_take_several_images_is_refused_at_start(
    tiny_models: Models, tmp_path: Path
) -> None:
    single = tmp_path / "single_image_template"
    shutil.copytree(tiny_models("qwen2_vl"), single)
    template = (single / "chat_template.jinja").read_text()
    # a fine-tune whose chat template renders only the first image, as single-image checkpoints do
    (single / "chat_template.jinja").write_text(
        template.replace("content['type'] == 'image' %}", "content['type'] == 'image' and loop.first %}")
    )
    cls = get_model("mis_qwen2_vl")
    with pytest.raises(CheckpointError, match="cannot take 2 images in one prompt"):
        cls(pretrained=str(single), backend="hf", processor_kwargs=TINY_PROCESSOR_KWARGS["qwen2_vl"])


def test_generic_model_detects_the_family_and_vllm_only_families_say_so(tiny_models: Models) -> None:
    model = MultiImageModel(pretrained=str(tiny_models("llava_onevision")), backend="hf")
    assert model.family.name == "llava_onevision"
    with pytest.raises(CheckpointError, match="phi3_5_v has no native transformers implementation"):
        get_model("mis_phi3_5_v")(pretrained="microsoft/Phi-3.5-vision-instruct", backend="hf")
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        get_model("mis_qwen2_vl")(pretrained=str(tiny_models("qwen2_vl")), backend="tpu")


def test_task_stop_strings_cut_the_answer(tiny_models: Models) -> None:
    model = make(tiny_models, "qwen2_vl")
    item = docs(1)
    free = generate(model, item, max_new_tokens=16, temperature=0, until=[])[0]
    stop = free[3:5]
    cut = generate(model, item, max_new_tokens=16, temperature=0, until=[stop])[0]
    assert stop not in cut and free.startswith(cut) and len(cut) < len(free)


def test_a_task_system_prompt_and_repetition_penalty_reach_the_model(tiny_models: Models) -> None:
    """MIR-SafetyBench's generation_kwargs (system_prompt, repetition_penalty) on the transformers path."""
    from mis_eval.core.samples import _GENERATION

    model = make(tiny_models, "qwen2_vl")
    q = "How are the pictures related?"
    # Qwen's template writes "You are a helpful assistant." when no system turn is given: the reference's
    # explicit one renders the same prompt; another system prompt replaces it
    assert model.prompt(q, 2, "You are a helpful assistant.") == model.prompt(q, 2)
    assert "<|im_start|>system\nBe brief.<|im_end|>" in model.prompt(q, 2, "Be brief.")
    item = [{"question": q, "images": [image(56, 56, (200, 10, 10)), image(56, 56, (10, 10, 200))]}]
    base = {"max_new_tokens": 16, "temperature": 0, "until": []}
    plain = generate(model, item, **base)[0]
    assert generate(model, item, **base, system_prompt="You are a helpful assistant.")[0] == plain
    assert generate(model, item, **base, repetition_penalty=4.0)[0] != plain  # it reaches generate()
    assert _GENERATION["t"]["repetition_penalty"] == 4.0
    assert not any("system" in d for d in _GENERATION["t"]["deviations"])
    raw = make(tiny_models, "llava_interleave")  # a raw prompt format: no system turn to put it in
    generate(raw, item, **base, system_prompt="Be brief.")
    assert _GENERATION["t"]["system_prompt"] == "Be brief."
    assert any("system prompt not sent" in d for d in _GENERATION["t"]["deviations"])
