"""The generic family: `--model mis_vlm` runs a checkpoint whose model_type has no family with its own chat
template, after checking that n images became n image spans; proven per architecture on tiny random
checkpoints (mis_eval/testing/tiny_archs.py) with the transformers backend."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lmms_eval.models import get_model

from mis_eval.records import find_runs
from model_adapters.batching import GenRequest
from model_adapters.families import Quirks, family_for_model_type, get_family
from model_adapters.hf_loading import CheckpointError
from model_adapters.image_spans import ImageSpanError, ImageSpans
from model_adapters.params import GenParams
from tests.adapters_support import image, tiny_models_fixture
from tests.generic_support import check_architecture, docs, generate, make

Models = Callable[[str], Path]
tiny_models = tiny_models_fixture()

ARCHITECTURES = ("qwen2_5_vl", "qwen3_vl", "qwen3_5", "gemma3", "glm4v", "aya_vision", "internvl", "idefics3")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_architecture_runs_through_mis_vlm_with_no_new_code(tiny_models: Models, arch: str) -> None:
    model = make(tiny_models(arch), arch)
    assert model.backend_name == "hf"
    check_architecture(model, arch, model.backend._input_ids)


def drop_images_after(src: Path, dst: Path, keep: int) -> Path:
    """A copy whose chat template renders only the first `keep` images, as a single-image fine-tune's does."""
    shutil.copytree(src, dst)
    template = (dst / "chat_template.jinja").read_text()
    kept = f"content['type'] == 'image' and loop.index <= {keep} %}}"
    (dst / "chat_template.jinja").write_text(template.replace("content['type'] == 'image' %}", kept))
    return dst


@pytest.mark.slow
def test_a_template_that_drops_an_image_stops_the_run_before_generating(
    tiny_models: Models, tmp_path: Path
) -> None:
    path = drop_images_after(tiny_models("qwen2_5_vl"), tmp_path / "drops_third", keep=2)
    model = get_model("mis_vlm")(pretrained=str(path), backend="hf")  # 2 images: the start-up probe passes
    calls: list[Any] = []
    real = model.backend.model.generate
    model.backend.model.generate = lambda *a, **k: calls.append(1) or real(*a, **k)
    items = docs()  # the first request (longest first) has 3 images
    with pytest.raises(ImageSpanError) as err:
        generate(model, items)
    message = str(err.value)
    assert f"checkpoint {str(path)!r}" in message and "with 3 images" in message
    assert "wrote 2 '<|image_pad|>'" in message and not calls  # nothing was generated
    # two images per request pass: the check is on what each request really has
    assert all(generate(model, [item])[0] for item in items if len(item["images"]) == 2)

    one = drop_images_after(tiny_models("qwen2_5_vl"), tmp_path / "drops_second", keep=1)
    with pytest.raises(CheckpointError, match="2 images") as err:  # refused at start-up
        get_model("mis_vlm")(pretrained=str(one), backend="hf")
    assert f"checkpoint {str(one)!r}" in str(err.value)


def test_spans_are_runs_of_the_image_token_or_a_once_per_image_marker() -> None:
    spans = ImageSpans("ckpt", "<image>", token_id=7, token="<image>")
    assert spans.count([1, 7, 7, 7, 2, 7, 7, 3]) == 2 and spans.count([7, 7, 7]) == 1
    assert spans.count([1]) == 0
    rows = ImageSpans("ckpt", "[IMG]", token_id=7, token="[IMG]", marker="[IMG_END]", marker_id=9)
    assert rows.count([7, 7, 8, 7, 7, 9, 7, 8, 7, 9]) == 2  # two images, rows broken by 8
    req = GenRequest("t/test/0", "[IMG]q", [image(8, 8, (0, 0, 0))] * 2, GenParams(1))
    with pytest.raises(ImageSpanError, match="with 2 images holds 1 image spans.*wrote 1 '\\[IMG\\]'"):
        rows.check([7, 7, 9], req)


def test_mis_vlm_falls_back_to_the_generic_family_only_without_a_family() -> None:
    assert family_for_model_type("qwen2_vl").name == "qwen2_vl"
    assert family_for_model_type("llava_onevision").name == "llava_onevision"
    assert family_for_model_type("qwen3_vl").name == "generic"
    assert family_for_model_type("some_vlm_of_2027").name == "generic"
    generic = get_family("mis_generic")
    assert generic.for_model_type("qwen3_vl") is generic  # no quirks needed
    tiled = generic.for_model_type("mistral3")
    assert tiled.image_marker == "image_end_token" and generic.image_marker is None
    assert isinstance(generic.architectures["aya_vision"], Quirks)
    assert get_model("mis_generic").family_name == "generic"
    with pytest.raises(ValueError, match="mis_generic needs pretrained="):
        get_model("mis_generic")(backend="hf")


def test_a_checkpoint_that_is_no_vision_language_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError, match="is a 'bert' model, which transformers does not load"):
        get_model("mis_vlm")(pretrained=str(tmp_path), backend="hf")


@pytest.mark.slow
def test_image_marker_model_arg(tiny_models: Models) -> None:
    """A vendor's tiled architecture needs no code: image_marker= names the token written once per image."""
    model = make(tiny_models("qwen2_5_vl"), "qwen2_5_vl", image_marker="<|vision_end|>")
    assert model.settings["image_spans"] == "occurrences of '<|vision_end|>' (written once per image)"
    assert generate(model, docs()[:2])
    with pytest.raises(CheckpointError, match="image_marker '<tile>' is not a token of checkpoint"):
        make(tiny_models("qwen2_5_vl"), "qwen2_5_vl", image_marker="<tile>")
    with pytest.raises(ValueError, match="image_marker= applies to the generic family only"):
        get_model("mis_qwen2_vl")(pretrained=str(tiny_models("qwen2_vl")), backend="hf", image_marker="<x>")


@pytest.mark.slow
def test_selftest_runs_a_new_architecture_in_one_step(
    tiny_models: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mis-eval selftest --model mis_vlm --model_args pretrained=PATH --config offline` on a checkpoint
    no family knows (Gemma 3): it generates through the generic family, judges and gates."""
    from mis_eval.cli import build_parser, main
    from mis_eval.commands.demo import demo_data_root

    for spelling in ("--model_args", "--model-args"):
        parsed = build_parser().parse_args(["selftest", "--model", "mis_vlm", spelling, "pretrained=x"])
        assert parsed.model_args == "pretrained=x"
    monkeypatch.setenv("MIS_DATA_ROOT", str(demo_data_root()))
    path = tiny_models("gemma3")
    out = tmp_path / "report"
    model_args = f"pretrained={path},max_new_tokens=4"
    argv = ["selftest", "--model", "mis_vlm", "--model_args", model_args, "--config", "offline"]
    code = main([*argv, "--out", str(out), "--batch-size", "8", "--no-progress"])
    report = json.loads((out / "report.json").read_text())
    # a random model refuses nothing: the offline gate (ASR at most 90) fails, as it should
    assert code == 1 and report["verdict"] == "fail"
    assert report["measurements"]["mis_hard/ASR"]["n"] == 6
    (run,) = [r for _, r in find_runs([out / "runs"]) if r.task.name == "mis_hard"]
    adapter = run.generation["adapter"]
    assert (adapter["family"], adapter["architecture"], adapter["backend"]) == ("generic", "gemma3", "hf")
    assert adapter["deviations"] == ["max_new_tokens=4 (overrides the task's budget)"]
