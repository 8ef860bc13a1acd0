"""Random-weight checkpoints of the paper's families at their published sizes, for the device check.

No hub is reachable on the GPU machine, and 16 GB of weights per model would not travel, so
`benchmarks/gpu_check.py` builds each model from its published architecture: `write_checkpoint`
writes config, tokenizer and processor (no weights) and `build_model` makes the random model on the
device itself. Each `Spec` holds the published config.json values that set the cost (widths, depths,
heads, vocabulary) and the published image-processor settings. Sizes:

* `full`: the published architecture.
* `mid`: the published vocabulary and vision widths, a narrow text model and two layers per tower:
  big enough to catch dtype/device bugs, small enough for bf16 on a CPU.
* `tiny`: the test suite's `--dry-run` (a few hundred thousand parameters).

Every size keeps the published image-processor settings and vision tile size, so visual token
counts are the real ones at every size. The tokenizer is the tiny byte-level BPE of
`mis_eval.testing.tiny` with the family's special tokens; the model's vocabulary keeps its
published size, so ids past the tokenizer's decode to nothing: compare token ids, not text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mis_eval.testing.tiny import (
    CHATML_TEXT_TEMPLATE,
    IDEFICS3_SPECIALS,
    INTERNVL_NAMED_TOKENS,
    INTERNVL_SPECIALS,
    LLAVA_OV_SPECIALS,
    LLAVA_OV_TEMPLATE,
    QWEN2_VL_SPECIALS,
    QWEN2_VL_TEMPLATE,
    add_video_processor,
    make_tokenizer,
    qwen_token_ids,
    token_ids,
)
from model_adapters.hf_loading import images_only_processor

SIZES = ("full", "mid", "tiny")
# Text models below full size; head_dim stays 128 at mid (as every published model here), 32 at tiny.
TEXT_SCALED: dict[str, dict[str, int]] = {
    "mid": dict(
        hidden_size=512,
        intermediate_size=1024,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "tiny": dict(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
}
# A SigLIP/ViT-style vision tower below full size (mid: published widths, two layers).
VISION_TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4)
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@dataclass(frozen=True)
class Spec:
    family: str  # model_adapters family name
    checkpoint: str  # the published checkpoint whose architecture this is
    text: dict[str, Any]  # its text config (config.json values that set the cost)
    vision: dict[str, Any]  # its vision config
    make: Callable[[Spec, str], tuple[Any, Any]]  # size -> (model config, processor)
    image_token: str  # the placeholder the transformers processor expands, one per visual token
    # visual tokens of one width x height image, by the reference's rule
    expected_tokens: Callable[[int, int], int]
    rule: str  # where that rule comes from
    # per image of a prompt with several, where transformers knowingly differs from the reference run
    transformers_multi_image: Callable[[int, int], int] | None = None
    notes: str = ""


def text_config(spec: Spec, size: str, tok: Any, eos: str, pad: str, **extra: Any) -> dict[str, Any]:
    cfg = {**spec.text, **TEXT_SCALED.get(size, {}), **extra}
    if size == "tiny":
        cfg["vocab_size"] = len(tok)
    eos_id, pad_id = token_ids(tok, eos, pad)
    return {**cfg, "eos_token_id": eos_id, "pad_token_id": pad_id, "bos_token_id": None}


def vision_config(spec: Spec, size: str) -> dict[str, Any]:
    if size == "full":
        return dict(spec.vision)
    if size == "mid":
        return {**spec.vision, "num_hidden_layers": 2}
    return {**spec.vision, **VISION_TINY}


# --- the reference's visual-token rules (independent of the transformers processors they check) ------


def qwen2_vl_tokens(width: int, height: int) -> int:
    """qwen_vl_utils.smart_resize with its defaults (what the reference's process_vision_info did):
    sides rounded to multiples of 28 within 4*28*28..16384*28*28 pixels; one token per 28x28."""
    factor, min_pixels, max_pixels = 28, 4 * 28 * 28, 16384 * 28 * 28
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = math.floor(height / beta / factor) * factor
        w = math.floor(width / beta / factor) * factor
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return (h // factor) * (w // factor)


def internvl_tiles(width: int, height: int, max_num: int = 4, image_size: int = 448) -> int:
    """InternVL's dynamic_preprocess (the reference's vLLM max_dynamic_patch=4): the tile grid of
    closest aspect ratio with at most max_num tiles, plus a thumbnail when there is more than one."""
    ratios = sorted(
        {
            (i, j)
            for n in range(1, max_num + 1)
            for i in range(1, n + 1)
            for j in range(1, n + 1)
            if i * j <= max_num
        },
        key=lambda r: r[0] * r[1],
    )
    aspect, best, best_diff = width / height, (1, 1), float("inf")
    for ratio in ratios:
        diff = abs(aspect - ratio[0] / ratio[1])
        if diff < best_diff:
            best_diff, best = diff, ratio
        elif diff == best_diff and width * height > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
            best = ratio
    blocks = best[0] * best[1]
    return blocks + (blocks != 1)


def internvl_tokens(width: int, height: int) -> int:
    return internvl_tiles(width, height) * 256  # (448 / 14)^2 patches, pixel-shuffled 2x2


def idefics3_tokens(width: int, height: int) -> int:
    """Idefics3: longest edge to 4*364 (the reference's size), sides up to multiples of 364, one
    364-pixel crop per cell plus the whole image, 169 tokens each (26x26 patches, 2x2 shuffled)."""
    tile, longest = 364, 4 * 364
    aspect = width / height
    if width >= height:
        w, h = longest, int(longest / aspect)
        h += h % 2
    else:
        h, w = longest, int(longest * aspect)
        w += w % 2
    if w >= h:
        w = math.ceil(w / tile) * tile
        h = math.ceil(int(w / aspect) / tile) * tile
    else:
        h = math.ceil(h / tile) * tile
        w = math.ceil(int(h * aspect) / tile) * tile
    crops = (h // tile) * (w // tile)
    return (crops + (crops > 1)) * 169


LLAVA_OV_PINPOINTS = [[384 * i, 384 * j] for i in range(1, 7) for j in range(1, 7)]


def llava_onevision_tokens(width: int, height: int) -> int:
    """LLaVA-OneVision anyres_max_9 (LLaVA-NeXT's llava_arch): the base 27x27 view, plus the grid view
    at the best pinpoint resolution, unpadded to the image's aspect ratio, shrunk when above 9 views'
    worth, with one newline token per row."""
    best, best_eff, best_waste = (384, 384), 0, float("inf")
    for h_pin, w_pin in LLAVA_OV_PINPOINTS:
        scale = min(w_pin / width, h_pin / height)
        eff = min(int(width * scale) * int(height * scale), width * height)
        waste = w_pin * h_pin - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (h_pin, w_pin), eff, waste
    cur_h, cur_w = best[0] // 384 * 27, best[1] // 384 * 27
    if width / height > cur_w / cur_h:
        new_h = int(height * cur_w / width)
        cur_h -= (cur_h - new_h) // 2 * 2
    else:
        new_w = int(width * cur_h / height)
        cur_w -= (cur_w - new_w) // 2 * 2
    times = math.sqrt(cur_h * cur_w / (9 * 27 * 27))
    if times > 1.1:
        cur_h, cur_w = int(cur_h // times), int(cur_w // times)
    return 27 * 27 + cur_h * cur_w + cur_h


# --- the families ---------------------------------------------------------------------------------


def _qwen2_vl(spec: Spec, size: str) -> tuple[Any, Any]:
    from transformers import Qwen2VLConfig, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = make_tokenizer(QWEN2_VL_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>")
    mrope = [4, 6, 6] if size == "tiny" else [16, 24, 24]  # halves of head_dim 32 / 128
    text = text_config(
        spec, size, tok, "<|im_end|>", "<|endoftext|>", rope_scaling={"type": "mrope", "mrope_section": mrope}
    )
    vision = dict(spec.vision)
    if size != "full":
        vision["depth"] = 2
    if size == "tiny":
        vision.update(depth=1, embed_dim=64, num_heads=4, mlp_ratio=2)
    config = Qwen2VLConfig(
        text_config=text,
        vision_config={**vision, "hidden_size": text["hidden_size"]},  # the merger's output width
        **qwen_token_ids(tok),
    )
    image_processor = Qwen2VLImageProcessorPil(
        size={"shortest_edge": 4 * 28 * 28, "longest_edge": 16384 * 28 * 28},
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    processor = images_only_processor(Qwen2VLProcessor)(
        image_processor=image_processor, tokenizer=tok, chat_template=QWEN2_VL_TEMPLATE
    )
    return config, processor


def _llava_onevision(spec: Spec, size: str) -> tuple[Any, Any]:
    from transformers import LlavaOnevisionConfig, LlavaOnevisionProcessor
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
        LlavaOnevisionImageProcessorPil,
    )

    tok = make_tokenizer(LLAVA_OV_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>")
    image_id, video_id = token_ids(tok, "<image>", "<video>")
    config = LlavaOnevisionConfig(
        vision_config=vision_config(spec, size),
        text_config=text_config(spec, size, tok, "<|im_end|>", "<|endoftext|>"),
        image_token_index=image_id,
        video_token_index=video_id,
        image_grid_pinpoints=LLAVA_OV_PINPOINTS,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        vision_aspect_ratio="anyres_max_9",
    )
    image_processor = LlavaOnevisionImageProcessorPil(
        size={"height": 384, "width": 384},
        image_grid_pinpoints=LLAVA_OV_PINPOINTS,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_pad=True,
    )
    processor = images_only_processor(LlavaOnevisionProcessor)(
        image_processor=image_processor,
        tokenizer=tok,
        num_image_tokens=729,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
        chat_template=LLAVA_OV_TEMPLATE,
    )
    return config, processor


def _internvl(spec: Spec, size: str) -> tuple[Any, Any]:
    from transformers import InternVLConfig, InternVLProcessor
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
        vision_config=vision_config(spec, size),
        text_config=text_config(spec, size, tok, "<|im_end|>", "<|endoftext|>"),
        image_token_id=image_id,
        image_seq_length=256,
        downsample_ratio=0.5,
        projector_hidden_act="gelu",
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    # the published -hf processor has max_patches=12; the family's reference setting (4) is applied
    # by the adapter as a processor kwarg, exactly as for a downloaded checkpoint
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": 448, "width": 448},
        crop_to_patches=True,
        min_patches=1,
        max_patches=12,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )
    processor = images_only_processor(InternVLProcessor)(
        image_processor=image_processor,
        tokenizer=tok,
        image_seq_length=256,
        chat_template=CHATML_TEXT_TEMPLATE,
    )
    return config, processor


def _idefics3(spec: Spec, size: str) -> tuple[Any, Any]:
    from transformers import Idefics3Config, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    tok = make_tokenizer(
        IDEFICS3_SPECIALS, eos="<end_of_utterance>", pad="<|end_of_text|>", bos="<|begin_of_text|>"
    )
    (image_id,) = token_ids(tok, "<image>")
    config = Idefics3Config(
        vision_config=vision_config(spec, size),
        text_config=text_config(spec, size, tok, "<end_of_utterance>", "<|end_of_text|>"),
        image_token_id=image_id,
        scale_factor=2,
    )
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 4 * 364},
        max_image_size={"longest_edge": 364},
        do_image_splitting=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=169)
    return config, processor


QWEN2_7B = dict(
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
)
LLAMA_8B = dict(
    model_type="llama",
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)
SIGLIP_SO400M = dict(
    hidden_size=1152, intermediate_size=4304, num_attention_heads=16, patch_size=14
)  # google/siglip-so400m-patch14-384, as the towers below use it

SPECS: dict[str, Spec] = {
    spec.family: spec
    for spec in (
        Spec(
            family="qwen2_vl",
            checkpoint="Qwen/Qwen2-VL-7B-Instruct",
            text={**QWEN2_7B, "vocab_size": 152064},
            vision=dict(
                depth=32,
                embed_dim=1280,
                num_heads=16,
                mlp_ratio=4,
                patch_size=14,
                spatial_merge_size=2,
                temporal_patch_size=2,
            ),
            make=_qwen2_vl,
            image_token="<|image_pad|>",
            expected_tokens=qwen2_vl_tokens,
            rule="qwen_vl_utils.smart_resize defaults (28-pixel multiples, 3,136-12,845,056 pixels)",
        ),
        Spec(
            family="llava_onevision",
            checkpoint="llava-hf/llava-onevision-qwen2-7b-ov-hf",
            text={**QWEN2_7B, "model_type": "qwen2", "vocab_size": 152128},
            vision={
                **SIGLIP_SO400M,
                "model_type": "siglip_vision_model",
                "num_hidden_layers": 26,
                "image_size": 384,
            },
            make=_llava_onevision,
            image_token="<image>",
            expected_tokens=llava_onevision_tokens,
            rule="LLaVA-NeXT anyres_max_9 over 384-pixel views (729 base + unpadded grid + newlines)",
            transformers_multi_image=lambda width, height: 27 * 27 + 1,
            notes=(
                "transformers' LLaVA-OneVision (processor and model) gives each image of a prompt with "
                "several only its base view, 729 + 1 newline tokens; vLLM, the reference's engine, expands "
                "every image with anyres_max_9 (the rule's count; the reference's qwen_vl_utils pre-resize, "
                f"bug M3, made 1024x768 into 1036x756: {llava_onevision_tokens(1036, 756)}), so backend=hf "
                "sees fewer visual tokens than the paper's run"
            ),
        ),
        Spec(
            family="internvl2_5",
            checkpoint="OpenGVLab/InternVL2_5-8B-MPO-hf (InternVL2.5-8B in transformers format)",
            text={**LLAMA_8B, "vocab_size": 92553, "max_position_embeddings": 32768, "rope_theta": 1000000.0},
            vision=dict(
                hidden_size=1024,
                intermediate_size=4096,
                num_hidden_layers=24,
                num_attention_heads=16,
                image_size=[448, 448],
                patch_size=[14, 14],
                attention_bias=True,
                use_qk_norm=False,
                use_absolute_position_embeddings=True,
            ),
            make=_internvl,
            image_token="<IMG_CONTEXT>",
            expected_tokens=internvl_tokens,
            rule="InternVL dynamic_preprocess, max_dynamic_patch=4 (+ thumbnail), 256 tokens per 448² tile",
        ),
        Spec(
            family="idefics3",
            checkpoint="HuggingFaceM4/Idefics3-8B-Llama3",
            text={
                **LLAMA_8B,
                "vocab_size": 128259,
                "max_position_embeddings": 131072,
                "rope_theta": 500000.0,
            },
            vision={**SIGLIP_SO400M, "num_hidden_layers": 27, "image_size": 364},
            make=_idefics3,
            image_token="<image>",
            expected_tokens=idefics3_tokens,
            rule="Idefics3 longest_edge 4*364, 364-pixel crops + global image, 169 tokens each",
        ),
    )
}
VIDEO_PROCESSORS = {
    "qwen2_vl": "Qwen2VLVideoProcessor",
    "llava_onevision": "LlavaOnevisionVideoProcessor",
    "internvl2_5": "InternVLVideoProcessor",
}


def write_checkpoint(spec: Spec, size: str, out: str | Path) -> tuple[Path, Any]:
    """Config, tokenizer and processor of `spec` at `size` in `out` (no weights); returns (out, config)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; use one of {', '.join(SIZES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config, processor = spec.make(spec, size)
    config.save_pretrained(out)
    processor.save_pretrained(out)
    if spec.family in VIDEO_PROCESSORS:  # as published: lets AutoProcessor load where torchvision exists
        add_video_processor(out, VIDEO_PROCESSORS[spec.family])
    return out, config


def build_model(family_hf_model: str, config: Any, device: str, dtype: Any, seed: int = 0) -> Any:
    """The random model, allocated and initialised on `device` in `dtype` (seconds for 8B on a GPU)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model_cls = getattr(transformers, family_hf_model)
    with torch.device(device):
        model = model_cls.from_config(config, dtype=dtype)
    return model.eval()
