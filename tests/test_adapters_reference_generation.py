"""Generation as the MIS reference inference scripts ran it, per family (PROTOCOLS.md 1.4).

Token counts are those of the published processors' rules, measured on tiny checkpoints whose
image processors are the real classes (Qwen2-VL: 14-pixel patches merged 2x2, so 28 pixels per
token side; InternVL: tiles cropped by GotOcr2's rules).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lmms_eval.models import get_model
from PIL import Image

from mis_eval.core.samples import logged_item
from mis_eval.lmms_io import find_logged_tasks, read_samples
from mis_tasks.mis import utils as mis_utils
from model_adapters.families import get_family
from model_adapters.params import GenParams
from tests.adapters_support import image, instances, tiny_models_fixture

Models = Callable[[str], Path]
tiny_models = tiny_models_fixture()
# transformers' Qwen2-VL image processor names the pixel bounds shortest_edge / longest_edge
BEFORE = {"size": {"shortest_edge": 256 * 28 * 28, "longest_edge": 1280 * 28 * 28}}  # the old bounds


def model(tiny_models: Models, family: str, **args: Any) -> Any:
    return get_model(get_family(family).model_id)(pretrained=str(tiny_models(family)), backend="hf", **args)


def visual_tokens(m: Any, size: tuple[int, int], token: str) -> int:
    inputs = m.backend._encode([m.prompt("q", 1)], [[Image.new("RGB", size, (90, 30, 200))]])
    return int((inputs["input_ids"] == m.backend.tokenizer.convert_tokens_to_ids(token)).sum())


@pytest.mark.slow
def test_qwen2_vl_images_get_the_reference_visual_token_counts(tiny_models: Models) -> None:
    """qwen_vl_utils' defaults (3,136-12,845,056 pixels): 2048x1536 -> 55x73 = 4,015 tokens, 256^2 -> 81."""
    m = model(tiny_models, "qwen2_vl")
    assert visual_tokens(m, (2048, 1536), "<|image_pad|>") == 4015
    assert visual_tokens(m, (256, 256), "<|image_pad|>") == 81
    assert visual_tokens(m, (28, 28), "<|image_pad|>") == 4  # upscaled to min_pixels = 4 tokens
    old = model(tiny_models, "qwen2_vl", processor_kwargs=json.dumps(BEFORE))  # an explicit deviation
    assert visual_tokens(old, (2048, 1536), "<|image_pad|>") == 1230
    assert visual_tokens(old, (256, 256), "<|image_pad|>") == 256
    assert old.settings["deviations"] == [f"processor_kwargs={json.dumps(BEFORE, sort_keys=True)}"]
    assert m.settings["deviations"] == [] and m.settings["image_processing"] == {
        "size": {"shortest_edge": 3136, "longest_edge": 12845056}
    }


@pytest.mark.slow
def test_internvl_takes_at_most_4_tiles_on_transformers_as_on_vllm(tiny_models: Models) -> None:
    """1024^2 with 448-pixel tiles: 2x2 tiles + thumbnail = 5 tiles, 5 x 256 = 1,280 tokens (12 tiles: 10)."""
    real = {"size": {"height": 448, "width": 448}, "image_seq_length": 256}  # InternVL2.5-8B's processor
    m = model(tiny_models, "internvl2_5", processor_kwargs=json.dumps(real))
    assert visual_tokens(m, (1024, 1024), "<IMG_CONTEXT>") == 1280
    assert m.settings["image_processing"]["max_patches"] == 4
    processor_default = model(
        tiny_models, "internvl2_5", processor_kwargs=json.dumps({**real, "max_patches": 12})
    )
    assert visual_tokens(processor_default, (1024, 1024), "<IMG_CONTEXT>") == 2560
    assert get_family("internvl2_5").mm_processor_kwargs == {"max_dynamic_patch": 4}  # vLLM's name


@pytest.mark.parametrize(
    ("task_budget", "model_arg", "want"),
    [(1024, None, 512), (32, None, 32), (None, None, 512), (1024, 1024, 1024), (1024, 300, 300)],
)
def test_deepseek_vl2_generates_at_most_512_new_tokens_by_default(
    task_budget: int | None, model_arg: int | None, want: int
) -> None:
    cap = get_family("deepseek_vl2").max_new_tokens
    assert cap == 512
    kwargs = {} if task_budget is None else {"max_new_tokens": task_budget}
    assert GenParams.from_task(kwargs, model_arg, cap).max_new_tokens == want
    assert (
        GenParams.from_task(
            {"max_new_tokens": 1024}, None, get_family("qwen2_vl").max_new_tokens
        ).max_new_tokens
        == 1024
    )


def with_generation_config(src: Path, dest: Path, **extras: Any) -> Path:
    shutil.copytree(src, dest)
    config = json.loads((dest / "generation_config.json").read_text())
    (dest / "generation_config.json").write_text(json.dumps({**config, **extras}))
    return dest


@pytest.mark.slow
def test_checkpoint_sampling_extras_do_not_change_answers(tiny_models: Models, tmp_path: Path) -> None:
    """Qwen2-VL ships repetition_penalty 1.05 (and top_k/top_p/temperature) in generation_config.json;
    the reference's vLLM sampling ignored them, and so does the transformers backend by default."""
    src = tiny_models("qwen2_vl")
    extras = {"repetition_penalty": 3.0, "no_repeat_ngram_size": 1, "do_sample": True, "top_k": 1}
    shipped = with_generation_config(src, tmp_path / "shipped", **extras)
    items = [
        {
            "question": "Describe both images in detail.",
            "images": [image(56, 56, (200, 10, 10)), image(84, 28, (1, 2, 250))],
        },
        {"question": "What is dangerous here?", "images": [image(28, 56, (9, 200, 9))]},
    ]
    small = {"processor_kwargs": json.dumps({"size": {"shortest_edge": 3136, "longest_edge": 16 * 784}})}

    def answers(path: Path, **args: Any) -> list[str]:
        m = get_model("mis_qwen2_vl")(pretrained=str(path), backend="hf", batch_size=2, **small, **args)
        reqs, m.task_dict = instances(items, {"max_new_tokens": 16, "temperature": 0, "until": []})
        out = m.generate_until(reqs)
        settings = logged_item({"task": "t", "id": "0"}, out[0])["generation"]
        assert settings["max_new_tokens"] == 16 and settings["backend"] == "hf"
        return [*out, settings]  # type: ignore[list-item]

    *plain, _ = answers(src)
    *ignored, settings = answers(shipped)
    assert ignored == plain
    assert settings["checkpoint_generation_config"] == dict(sorted(extras.items()))
    assert settings["sampling"] == "explicit, as vLLM"
    *applied, kept = answers(shipped, checkpoint_sampling="true")  # the explicit deviation
    assert applied != plain  # the extras do change a random model's answers: the check has power
    assert any("checkpoint_sampling=true" in d for d in kept["deviations"])


@pytest.mark.slow
def test_settings_reach_the_run_record_through_lmms_eval_logs(tiny_models: Models, tmp_path: Path) -> None:
    """lmms-eval logs no gen_kwargs, so the adapter's settings ride on the task's first logged item."""
    m = model(tiny_models, "qwen2_vl", max_new_tokens=4)
    reqs, m.task_dict = instances(
        [{"question": "q", "images": [image(28, 28, (1, 1, 1))]}] * 2, task="mis_hard"
    )
    texts = m.generate_until(reqs)
    docs = [{"task": "mis_hard", "id": str(i)} for i in range(2)]
    logged = [mis_utils.process_results(d, [t]) for d, t in zip(docs, texts, strict=True)]
    assert "generation" in logged[0]["ASR"] and "generation" not in logged[1]["ASR"]  # once per task
    path = tmp_path / "20250101_samples_mis_hard.jsonl"
    path.write_text("".join(json.dumps({"doc_id": i, **row}) + "\n" for i, row in enumerate(logged)))
    (task,) = find_logged_tasks(path)
    read_samples(task, {d["id"]: d for d in docs})
    settings = task.generation["adapter"]
    assert settings["max_new_tokens"] == 4 and settings["family"] == "qwen2_vl"
    assert settings["deviations"] == ["max_new_tokens=4 (overrides the task's budget)"]
    path.write_text(json.dumps({"doc_id": 0, "ASR": {"task": "mis_hard", "id": "0", "response": "x"}}) + "\n")
    (other,) = find_logged_tasks(path)
    read_samples(other, {d["id"]: d for d in docs})
    assert "adapter" not in other.generation  # another lmms-eval model: nothing claimed
