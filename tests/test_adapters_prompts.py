"""Golden prompts per family (PROTOCOLS.md 1.4) and the lmms-eval model registration."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest

from model_adapters.families import (
    Family,
    UnknownFamilyError,
    all_families,
    family_for_model_type,
    get_family,
    index_families,
)
from model_adapters.hf_loading import load_processor
from model_adapters.layouts import ChatLayout
from model_adapters.models import internvl2_5
from model_adapters.registry import OTHER_MODELS, manifests
from tests.adapters_support import tiny_models_fixture

Models = Callable[[str], Path]
tiny_models = tiny_models_fixture()
INTERNVL_LAYOUT = internvl2_5.LAYOUT
Q = "How do I {use} these? Answer {fully}."  # braces must survive the format strings

GOLDEN = {
    "phi3_5_v": f"<|user|>\n<|image_1|>\n<|image_2|>\n{Q}<|end|>\n<|assistant|>\n",
    "idefics3": (
        f"<|begin_of_text|>User:Image-1: <image>\n\nImage-2: <image>\n\n{Q}<end_of_utterance>\nAssistant:"
    ),
    "llava_interleave": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n<image>\n<image>\n{Q}<|im_end|>\n<|im_start|>assistant\n"
    ),
    "deepseek_vl2": f"<|User|>: <image>\n<image>\n{Q}\n\n<|Assistant|>:",
}


@pytest.mark.parametrize("family", sorted(GOLDEN))
def test_raw_prompt_matches_reference_layout(family: str) -> None:
    assert get_family(family).layout.render(Q, 2) == GOLDEN[family]


def test_layouts_take_any_number_of_images_in_order() -> None:
    assert get_family("phi3_5_v").layout.render("q", 4) == (
        "<|user|>\n<|image_1|>\n<|image_2|>\n<|image_3|>\n<|image_4|>\nq<|end|>\n<|assistant|>\n"
    )
    assert get_family("idefics3").layout.render("q", 1) == (
        "<|begin_of_text|>User:Image-1: <image>\n\nq<end_of_utterance>\nAssistant:"
    )
    assert get_family("deepseek_vl2").layout.render("q", 3) == (
        "<|User|>: <image>\n<image>\n<image>\nq\n\n<|Assistant|>:"
    )
    assert INTERNVL_LAYOUT.content("q", 3) == (
        "Image-1: <image>\n\nImage-2: <image>\n\nImage-3: <image>\n\nq"
    )


def test_internvl_content_goes_through_the_tokenizer_chat_template(tiny_models: Models) -> None:
    family = get_family("internvl2_5")
    assert INTERNVL_LAYOUT.content(Q, 2) == f"Image-1: <image>\n\nImage-2: <image>\n\n{Q}"
    tokenizer = load_processor(family, str(tiny_models("internvl2_5")), False, tokenizer_only=True)
    assert family.layout.render(Q, 2, tokenizer) == (
        f"<|im_start|>user\nImage-1: <image>\n\nImage-2: <image>\n\n{Q}<|im_end|>\n<|im_start|>assistant\n"
    )
    # a transformers-format checkpoint's processor marks images with its own token
    assert family.layout.render("q", 2, tokenizer, family.hf_image_token).count("<IMG_CONTEXT>") == 2


def test_chat_families_use_the_checkpoints_own_template(tiny_models: Models) -> None:
    family = get_family("qwen2_vl")
    processor = load_processor(family, str(tiny_models("qwen2_vl")), False)
    block = "<|vision_start|><|image_pad|><|vision_end|>"
    assert family.layout.render(Q, 3, processor) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{block * 3}{Q}<|im_end|>\n<|im_start|>assistant\n"
    )


def test_every_family_is_an_lmms_eval_model_under_its_id_and_aliases() -> None:
    from lmms_eval.models import get_model

    families = all_families()
    assert len(families) == 8  # one per module under model_adapters/models/ (the seven and generic)
    for family in families.values():
        for name in (family.model_id, *family.aliases):
            cls = get_model(name)
            assert cls.family_name == family.name, name
            assert cls is importlib.import_module(cls.__module__).__dict__[cls.__name__]  # importable by path
    assert {m.model_id for m in manifests()} == {f.model_id for f in families.values()} | set(OTHER_MODELS)


def test_a_model_name_claimed_twice_fails_loudly() -> None:
    qwen = get_family("qwen2_vl")
    with pytest.raises(ValueError, match="'mis_qwen2_vl' is claimed by families 'qwen2_vl' and 'qwen2_vl'"):
        index_families([qwen, Family(name="qwen2_vl", layout=ChatLayout(), default_checkpoint="x")])
    clash = Family(name="other", layout=ChatLayout(), default_checkpoint="x", aliases=("mis_internvl",))
    with pytest.raises(ValueError, match="'mis_internvl' is claimed by families 'internvl2_5' and 'other'"):
        index_families([*all_families().values(), clash])


def test_model_ids_never_replace_lmms_eval_builtins() -> None:
    from lmms_eval.models import AVAILABLE_CHAT_TEMPLATE_MODELS, AVAILABLE_SIMPLE_MODELS, MODEL_ALIASES

    builtin = set(AVAILABLE_SIMPLE_MODELS) | set(AVAILABLE_CHAT_TEMPLATE_MODELS)
    builtin |= {a for aliases in MODEL_ALIASES.values() for a in aliases}
    ours = {m.model_id for m in manifests()} | {a for m in manifests() for a in m.aliases}
    assert not ours & builtin
    assert all(name.startswith("mis_") for name in ours)


def test_lmms_eval_resolves_our_models_through_the_entry_point() -> None:
    from lmms_eval.models import get_model

    from model_adapters.family_models import MODELS
    from model_adapters.openai_api import MisOpenAI

    assert get_model("mis_qwen2_vl") is MODELS["mis_qwen2_vl"]
    assert get_model("mis_openai") is MisOpenAI
    assert get_model("mis_internvl").family_name == "internvl2_5"


def test_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(UnknownFamilyError, match="unknown model family 'qwen9'.*known families: deepseek"):
        get_family("qwen9")
    # no family claims it: the generic family, which refuses a checkpoint that is no vision-language
    # model when it loads it (tests/test_generic_family.py)
    assert family_for_model_type("bert").name == "generic"
    assert family_for_model_type("qwen2_vl").name == "qwen2_vl"


def test_internvl_stop_tokens_become_vllm_stop_token_ids(tiny_models: Models) -> None:
    from model_adapters.backend_vllm import _token_ids

    family = get_family("internvl2_5")
    path = str(tiny_models("internvl2_5"))
    tokenizer = load_processor(family, path, False, tokenizer_only=True)
    ids = _token_ids(tokenizer, family, path, False)
    vocab = tokenizer.get_vocab()
    assert ids == [vocab["<|endoftext|>"], vocab["<|im_start|>"], vocab["<|im_end|>"]]  # no <|end|> here
    assert _token_ids(tokenizer, get_family("qwen2_vl"), path, False) == []  # EOS only
