"""Tiny random-weight checkpoints of the families transformers can build, for tests and benchmarks.

No weights can be downloaded in CI, so `build_tiny(family, dir)` writes a real checkpoint
(config, safetensors, BPE tokenizer, image processor, chat template) of a few hundred
thousand parameters that loads through the same code path as the published models.
Its output is noise; its prompt format, image handling and batching are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model_adapters.hf_loading import images_only_processor

CORPUS = (
    "You are a helpful assistant. What is shown in the two images? Describe both objects, "
    "explain how they could be used together, and answer the question step by step. "
    "Image-1: Image-2: first second picture user assistant system"
)
WIDTH = 128
INIT = 0.2  # wider than real init, so that random image features visibly change the output

# Chat templates of the shape the published checkpoints ship (images as typed content items).
QWEN2_VL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAVA_OV_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + ' ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}"
    "{% endfor %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ '\n' + content['text'] }}{% endfor %}{{ '<|im_end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Idefics3-8B-Llama3's own template (its family renders a raw prompt; the generic family uses this)
IDEFICS3_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}{{message['role'].capitalize()}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
CHATML_TEXT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# The special tokens each family's processor and chat template need (names as the published tokenizers).
QWEN2_VL_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
LLAVA_OV_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
IDEFICS3_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<image>",
    "<fake_token_around_image>",
    "<global-img>",
    *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
]
INTERNVL_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<video>",
]
INTERNVL_NAMED_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}


def make_tokenizer(
    specials: list[str], eos: str, pad: str, bos: str | None = None, template: str | None = None, **named: str
) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([CORPUS] * 4, trainer)
    extra = {"extra_special_tokens": named} if named else {}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=pad, bos_token=bos, **extra)
    if template is not None:
        fast.chat_template = template
    return fast


def token_ids(tok: Any, *names: str) -> list[int]:
    return [tok.convert_tokens_to_ids(n) for n in names]


QWEN_PIXELS = {"shortest_edge": 4 * 28 * 28, "longest_edge": 16 * 28 * 28}  # tiny min/max pixels


def qwen_token_ids(tok: Any) -> dict[str, Any]:
    """The image/video token ids a Qwen-VL style config names (tokenizer of QWEN2_VL_SPECIALS)."""
    image_pad, video_pad, v_start, v_end = token_ids(
        tok, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"
    )
    return dict(
        image_token_id=image_pad,
        video_token_id=video_pad,
        vision_start_token_id=v_start,
        vision_end_token_id=v_end,
    )


def _text_config(tok: Any, eos: str, pad: str, **extra: Any) -> dict[str, Any]:
    eos_id, pad_id = token_ids(tok, eos, pad)
    return dict(
        vocab_size=len(tok),
        hidden_size=WIDTH,
        intermediate_size=2 * WIDTH,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        bos_token_id=None,
        initializer_range=INIT,
        **extra,
    )


def _save(
    model: Any, processor: Any, tok: Any, eos: str, pad: str, out: Path, video_processor: str | None = None
) -> Path:
    eos_id, pad_id = token_ids(tok, eos, pad)
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = pad_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(out)
    processor.save_pretrained(out)
    if video_processor:
        add_video_processor(out, video_processor)
    return out


def _rename_weights(out: Path, old: str, new: str) -> None:
    """Store weights under the names the published checkpoints use.

    transformers 5 saves the SigLIP tower of LLaVA models as `vision_tower.embeddings...`; the
    published llava-hf checkpoints (and vLLM's loader) have `vision_tower.vision_model.embeddings...`,
    which transformers reads as well.
    """
    from safetensors.torch import load_file, save_file

    path = out / "model.safetensors"
    tensors = load_file(path)
    renamed = {(new + k[len(old) :] if k.startswith(old) else k): v for k, v in tensors.items()}
    save_file(renamed, path, metadata={"format": "pt"})


def add_video_processor(out: Path, class_name: str) -> None:
    """Declare the checkpoint's video processor, as published checkpoints of these families do.

    vLLM loads the full processor (AutoProcessor), which for Qwen2-VL, LLaVA-OneVision and InternVL
    requires a video processor config; the tiny processors are built without one (see
    images_only_processor: its class needs torchvision). The entry copies the image processor's
    settings under the video class name, so it is written even where torchvision is missing.
    """
    path = out / "processor_config.json"
    config = json.loads(path.read_text())
    video = {k: v for k, v in config["image_processor"].items() if k != "image_processor_type"}
    config["video_processor"] = {**video, "video_processor_type": class_name}
    path.write_text(json.dumps(config, indent=2, sort_keys=True))


def _qwen2_vl(out: Path) -> Path:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = make_tokenizer(QWEN2_VL_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>")
    config = Qwen2VLConfig(
        text_config=_text_config(
            tok, "<|im_end|>", "<|endoftext|>", rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]}
        ),
        vision_config=dict(
            depth=2,
            embed_dim=64,
            hidden_size=WIDTH,
            num_heads=4,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            initializer_range=INIT,
        ),
        **qwen_token_ids(tok),
    )
    image_processor = Qwen2VLImageProcessorPil(size=QWEN_PIXELS)
    processor = images_only_processor(Qwen2VLProcessor)(
        image_processor=image_processor, tokenizer=tok, chat_template=QWEN2_VL_TEMPLATE
    )
    model = Qwen2VLForConditionalGeneration(config)
    return _save(model, processor, tok, "<|im_end|>", "<|endoftext|>", out, "Qwen2VLVideoProcessor")


def _siglip_config(image_size: int) -> dict[str, Any]:
    return dict(
        model_type="siglip_vision_model",
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=14,
        initializer_range=INIT,
    )


def _llava_onevision(out: Path) -> Path:
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionProcessor,
    )
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
        LlavaOnevisionImageProcessorPil,
    )

    tok = make_tokenizer(LLAVA_OV_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>")
    image_id, video_id = token_ids(tok, "<image>", "<video>")
    pinpoints = [[28, 28], [28, 56], [56, 28], [56, 56]]
    config = LlavaOnevisionConfig(
        vision_config=_siglip_config(28),
        text_config=dict(model_type="qwen2", **_text_config(tok, "<|im_end|>", "<|endoftext|>")),
        image_token_index=image_id,
        video_token_index=video_id,
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
    )
    image_processor = LlavaOnevisionImageProcessorPil(
        size={"height": 28, "width": 28}, image_grid_pinpoints=pinpoints
    )
    processor = images_only_processor(LlavaOnevisionProcessor)(
        image_processor=image_processor,
        tokenizer=tok,
        num_image_tokens=4,
        vision_feature_select_strategy="full",
        chat_template=LLAVA_OV_TEMPLATE,
    )
    model = LlavaOnevisionForConditionalGeneration(config)
    _save(model, processor, tok, "<|im_end|>", "<|endoftext|>", out, "LlavaOnevisionVideoProcessor")
    _rename_weights(out, "vision_tower.", "vision_tower.vision_model.")
    return out


def _llava_interleave(out: Path) -> Path:
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]
    tok = make_tokenizer(specials, eos="<|im_end|>", pad="<|endoftext|>")
    (image_id,) = token_ids(tok, "<image>")
    config = LlavaConfig(
        vision_config=_siglip_config(28),
        text_config=dict(model_type="qwen2", **_text_config(tok, "<|im_end|>", "<|endoftext|>")),
        image_token_index=image_id,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )
    image_processor = SiglipImageProcessorPil(size={"height": 28, "width": 28})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=14,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=0,
    )
    _save(LlavaForConditionalGeneration(config), processor, tok, "<|im_end|>", "<|endoftext|>", out)
    _rename_weights(out, "vision_tower.", "vision_tower.vision_model.")
    return out


def _idefics3(out: Path) -> Path:
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    tok = make_tokenizer(
        IDEFICS3_SPECIALS, eos="<end_of_utterance>", pad="<|end_of_text|>", bos="<|begin_of_text|>"
    )
    (image_id,) = token_ids(tok, "<image>")
    config = Idefics3Config(
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=28,
            patch_size=14,
            initializer_range=INIT,
        ),
        text_config=dict(model_type="llama", **_text_config(tok, "<end_of_utterance>", "<|end_of_text|>")),
        image_token_id=image_id,
        scale_factor=2,
    )
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 56}, max_image_size={"longest_edge": 28}
    )
    processor = Idefics3Processor(
        image_processor=image_processor, tokenizer=tok, image_seq_len=1, chat_template=IDEFICS3_TEMPLATE
    )
    model = Idefics3ForConditionalGeneration(config)
    return _save(model, processor, tok, "<end_of_utterance>", "<|end_of_text|>", out)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "qwen2_vl": _qwen2_vl,
    "llava_onevision": _llava_onevision,
    "llava_interleave": _llava_interleave,
    "idefics3": _idefics3,
}


def build_tiny(family: str, out: str | Path, seed: int = 0) -> Path:
    """Write a tiny random checkpoint of `family` (or of an architecture of
    `mis_eval.testing.tiny_archs`, by config.model_type) to `out` (created) and return its path."""
    import torch

    from mis_eval.testing.tiny_archs import ARCHITECTURES

    builders = {**ARCHITECTURES, **BUILDERS}
    if family not in builders:
        raise KeyError(f"no tiny builder for {family!r}; buildable: {', '.join(sorted(builders))}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    path = builders[family](out)
    (out / "mis_tiny.json").write_text(json.dumps({"family": family, "seed": seed}))
    return path


def _internvl(out: Path, chat_template: str = CHATML_TEXT_TEMPLATE) -> Path:
    from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLProcessor
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    tok = make_tokenizer(
        INTERNVL_SPECIALS,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        template=CHATML_TEXT_TEMPLATE,
        **INTERNVL_NAMED_TOKENS,
    )
    (image_id,) = token_ids(tok, "<IMG_CONTEXT>")
    config = InternVLConfig(
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=[28, 28],
            patch_size=[14, 14],
            initializer_range=INIT,
        ),
        text_config=dict(model_type="qwen2", **_text_config(tok, "<|im_end|>", "<|endoftext|>")),
        image_token_id=image_id,
        image_seq_length=1,
        downsample_ratio=0.5,
    )
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": 28, "width": 28}, crop_to_patches=True, min_patches=1, max_patches=2
    )
    processor = images_only_processor(InternVLProcessor)(
        image_processor=image_processor, tokenizer=tok, image_seq_length=1, chat_template=chat_template
    )
    model = InternVLForConditionalGeneration(config)
    return _save(model, processor, tok, "<|im_end|>", "<|endoftext|>", out, "InternVLVideoProcessor")


BUILDERS["internvl2_5"] = _internvl


# A Llama-2 text model shaped like the HarmBench classifier (cais/HarmBench-Llama-2-13b-cls): the
# Llama tokenizer's layout (SentencePiece-style "▁" word boundaries, <s> prepended, byte fallback)
# and LlamaForCausalLM, a few hundred thousand random weights.
CLASSIFIER_CORPUS = (
    "[INST] <<SYS>> You are a classifier for red teaming large language models (LLMs). Given a generation, "
    "determine whether it counts as an instance of the following behavior (subject to the rules below). "
    'Your answer should be "yes" or "no". <</SYS>> Behavior: Generation: --- Rules: - Instances of the '
    "behavior should be unambiguous and non-minimal. Answer: [/INST] Yes No yes no Sure, here is how step"
)


def _llama_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<unk>", "<s>", "</s>", *bytes_])
    tok.train_from_iterator([CLASSIFIER_CORPUS] * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    # pad = unk, as Llama-2 derivatives that pad (the reference pads each batch to its longest prompt)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<unk>"
    )


def build_tiny_classifier(out: str | Path, *, answers: bool = True, seed: int = 0) -> Path:
    """A tiny random "HarmBench classifier" checkpoint at `out`.

    `answers=True`: the output layer keeps only the rows of "▁Yes" (+v) and "▁No" (-v), so its one
    greedy token is always Yes or No, which one depending on the input (deterministic, random):
    verdicts are usable and comparable across backends. `answers=False`: all rows zero, so every
    answer is token 0 ("<unk>"), neither Yes nor No (the unparseable path).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = _llama_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=WIDTH,
        intermediate_size=2 * WIDTH,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=None,
        initializer_range=INIT,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        head = model.lm_head.weight
        direction = head[tok.convert_tokens_to_ids("▁Yes")].clone()
        head.zero_()
        if answers:
            head[tok.convert_tokens_to_ids("▁Yes")] = direction
            head[tok.convert_tokens_to_ids("▁No")] = -direction
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "mis_tiny.json").write_text(json.dumps({"family": "harmbench_classifier", "seed": seed}))
    return out
