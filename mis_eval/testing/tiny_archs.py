"""Tiny random-weight checkpoints of current architectures, for the generic family's per-architecture proof.

Each builder writes a real checkpoint (config, safetensors, the 400-token BPE tokenizer of
`mis_eval.testing.tiny`, the architecture's own processor class and a chat template of the shape its
published checkpoints ship) small enough to generate a few tokens on CPU in about a second. Names are
config.model_type values; `build_tiny(name, dir)` builds these as well as the families' checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mis_eval.testing.tiny import (
    INIT,
    QWEN2_VL_SPECIALS,
    QWEN2_VL_TEMPLATE,
    QWEN_PIXELS,
    WIDTH,
    _rename_weights,
    _save,
    _siglip_config,
    _text_config,
    make_tokenizer,
    qwen_token_ids,
    token_ids,
)
from model_adapters.hf_loading import images_only_processor


def _typed_template(start: str, image: str, end: str, text_suffix: str = "") -> str:
    """A chat template over typed content items: `start`, then each item in order (`image` for an image,
    the text for a text item), then `end` (the generation prompt)."""
    return (
        f"{start}{{% for message in messages %}}{{% for content in message['content'] %}}"
        f"{{% if content['type'] == 'image' %}}{image}{{% elif content['type'] == 'text' %}}"
        f"{{{{ content['text'] }}}}{text_suffix}{{% endif %}}{{% endfor %}}{{% endfor %}}"
        f"{{% if add_generation_prompt %}}{end}{{% endif %}}"
    )


GEMMA3_TEMPLATE = _typed_template(
    "{{ bos_token }}<start_of_turn>user\n", "<start_of_image>", "<start_of_turn>model\n", "<end_of_turn>\n"
)
MISTRAL3_TEMPLATE = _typed_template("{{ bos_token }}[INST]", "[IMG]", "", "[/INST]")
INTERNVL_TEMPLATE = _typed_template(
    "<|im_start|>user\n", "<IMG_CONTEXT>\n", "<|im_start|>assistant\n", "<|im_end|>\n"
)
GLM4V_TEMPLATE = _typed_template(
    "[gMASK]<sop><|user|>\n", "<|begin_of_image|><|image|><|end_of_image|>", "<|assistant|>\n"
)
LLAMA4_TEMPLATE = _typed_template(
    "{{ bos_token }}<|header_start|>user<|header_end|>\n\n",
    "<|image|>",
    "<|header_start|>assistant<|header_end|>\n\n",
    "<|eot|>",
)
AYA_TEMPLATE = _typed_template(
    "<BOS_TOKEN><|START_OF_TURN_TOKEN|><|USER_TOKEN|>",
    "<image>",
    "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
    "<|END_OF_TURN_TOKEN|>",
)
MROPE = {"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 10000.0}
# GLM and Qwen3.5 rotate half of each 32-wide head: 8 frequencies, split over (t, h, w)
GLM_ROPE = {**MROPE, "mrope_section": [2, 3, 3], "partial_rotary_factor": 0.5}


def _qwen_vision(**extra: Any) -> dict[str, Any]:
    """A two-layer Qwen-style vision tower (Qwen2.5-VL, Qwen3-VL, Qwen3.5, GLM-4.1V): `extra` adds
    the patch size and what the architecture's own config needs."""
    return dict(
        depth=2,
        hidden_size=64,
        intermediate_size=128,
        num_heads=4,
        out_hidden_size=WIDTH,
        spatial_merge_size=2,
        temporal_patch_size=2,
        initializer_range=INIT,
        **extra,
    )


def _qwen2_5_vl(out: Path) -> Path:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = make_tokenizer(QWEN2_VL_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>")
    config = Qwen2_5_VLConfig(
        text_config=_text_config(tok, "<|im_end|>", "<|endoftext|>", rope_parameters=MROPE),
        vision_config=_qwen_vision(patch_size=14, window_size=56, fullatt_block_indexes=[1]),
        **qwen_token_ids(tok),
    )
    image_processor = Qwen2VLImageProcessorPil(size=QWEN_PIXELS)
    processor = images_only_processor(Qwen2_5_VLProcessor)(
        image_processor=image_processor, tokenizer=tok, chat_template=QWEN2_VL_TEMPLATE
    )
    model = Qwen2_5_VLForConditionalGeneration(config)
    return _save(model, processor, tok, "<|im_end|>", "<|endoftext|>", out, "Qwen2VLVideoProcessor")


def _qwen3_vl(out: Path) -> Path:
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = make_tokenizer(QWEN2_VL_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>")
    text = _text_config(tok, "<|im_end|>", "<|endoftext|>", head_dim=32, rope_parameters=MROPE)
    config = Qwen3VLConfig(
        text_config=text,
        vision_config=_qwen_vision(patch_size=16, num_position_embeddings=16, deepstack_visual_indexes=[0]),
        **qwen_token_ids(tok),
    )
    image_processor = Qwen2VLImageProcessorPil(
        size={"shortest_edge": 4 * 32 * 32, "longest_edge": 16 * 32 * 32}, patch_size=16
    )
    processor = images_only_processor(Qwen3VLProcessor)(
        image_processor=image_processor, tokenizer=tok, chat_template=QWEN2_VL_TEMPLATE
    )
    model = Qwen3VLForConditionalGeneration(config)
    return _save(model, processor, tok, "<|im_end|>", "<|endoftext|>", out, "Qwen3VLVideoProcessor")


def _gemma3(out: Path) -> Path:
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    specials = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>"]
    specials += ["<end_of_image>", "<image_soft_token>"]
    tok = make_tokenizer(
        specials,
        eos="<end_of_turn>",
        pad="<pad>",
        bos="<bos>",
        boi_token="<start_of_image>",
        eoi_token="<end_of_image>",
        image_token="<image_soft_token>",
    )
    tok.add_tokens(["\n", "\n\n", "\n\n\n", "\n\n\n\n"])  # single tokens in Gemma's vocab; vLLM looks them up
    boi, eoi, soft, bos = token_ids(tok, "<start_of_image>", "<end_of_image>", "<image_soft_token>", "<bos>")
    text = _text_config(
        tok, "<end_of_turn>", "<pad>", head_dim=32, query_pre_attn_scalar=32, sliding_window=64
    )
    # untied: with tied embeddings (Gemma's default) the random model only ever writes newlines
    text.update(model_type="gemma3_text", bos_token_id=bos, tie_word_embeddings=False)
    config = Gemma3Config(
        text_config=text,
        vision_config=_siglip_config(28),
        mm_tokens_per_image=4,
        boi_token_index=boi,
        eoi_token_index=eoi,
        image_token_index=soft,
        tie_word_embeddings=False,
    )
    image_processor = Gemma3ImageProcessorPil(size={"height": 28, "width": 28})
    processor = Gemma3Processor(
        image_processor=image_processor, tokenizer=tok, image_seq_length=4, chat_template=GEMMA3_TEMPLATE
    )
    _save(Gemma3ForConditionalGeneration(config), processor, tok, "<end_of_turn>", "<pad>", out)
    _rename_weights(out, "vision_tower.", "vision_tower.vision_model.")  # the published SigLIP names
    return out


def _mistral3(out: Path) -> Path:
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration, PixtralProcessor
    from transformers.models.pixtral.image_processing_pil_pixtral import PixtralImageProcessorPil

    specials = ["<unk>", "<s>", "</s>", "<pad>", "[INST]", "[/INST]", "[IMG]", "[IMG_BREAK]", "[IMG_END]"]
    tok = make_tokenizer(specials, eos="</s>", pad="<pad>", bos="<s>")
    (image_id,) = token_ids(tok, "[IMG]")
    text = _text_config(tok, "</s>", "<pad>", head_dim=32, sliding_window=None)
    text.update(model_type="mistral", bos_token_id=token_ids(tok, "<s>")[0])
    config = Mistral3Config(
        vision_config=dict(
            model_type="pixtral",
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            head_dim=16,
            image_size=56,
            patch_size=14,
            initializer_range=INIT,
        ),
        text_config=text,
        image_token_index=image_id,
        spatial_merge_size=2,
    )
    image_processor = PixtralImageProcessorPil(size={"longest_edge": 56}, patch_size=14)
    processor = PixtralProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=14,
        spatial_merge_size=2,
        chat_template=MISTRAL3_TEMPLATE,
    )
    return _save(Mistral3ForConditionalGeneration(config), processor, tok, "</s>", "<pad>", out)


def _internvl(out: Path) -> Path:
    """The transformers-format InternVL (the "-hf" repos) with its typed chat template; the family
    builder (`tiny._internvl`) renders string content, as InternVL2.5's tokenizer template does."""
    from mis_eval.testing.tiny import _internvl as family_builder

    return family_builder(out, INTERNVL_TEMPLATE)


def _glm4v(out: Path) -> Path:
    from transformers import Glm4vConfig, Glm4vForConditionalGeneration, Glm4vProcessor
    from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil

    specials = ["<|endoftext|>", "[gMASK]", "<sop>", "<|user|>", "<|assistant|>", "<|begin_of_image|>"]
    specials += ["<|end_of_image|>", "<|image|>", "<|begin_of_video|>", "<|end_of_video|>", "<|video|>"]
    tok = make_tokenizer(specials, eos="<|user|>", pad="<|endoftext|>")
    image, video, start, end, v_start, v_end = token_ids(
        tok,
        "<|image|>",
        "<|video|>",
        "<|begin_of_image|>",
        "<|end_of_image|>",
        "<|begin_of_video|>",
        "<|end_of_video|>",
    )
    text = _text_config(tok, "<|user|>", "<|endoftext|>", rope_parameters=GLM_ROPE)
    config = Glm4vConfig(
        text_config=text,
        vision_config=_qwen_vision(image_size=28, patch_size=14),
        image_token_id=image,
        video_token_id=video,
        image_start_token_id=start,
        image_end_token_id=end,
        video_start_token_id=v_start,
        video_end_token_id=v_end,
    )
    image_processor = Glm4vImageProcessorPil(size=QWEN_PIXELS)  # patches of 14, as its vision config
    processor = images_only_processor(Glm4vProcessor)(
        image_processor=image_processor, tokenizer=tok, chat_template=GLM4V_TEMPLATE
    )
    model = Glm4vForConditionalGeneration(config)
    return _save(model, processor, tok, "<|user|>", "<|endoftext|>", out, "Glm4vVideoProcessor")


def _aya_vision(out: Path) -> Path:
    from transformers import AyaVisionConfig, AyaVisionForConditionalGeneration, AyaVisionProcessor
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    specials = ["<PAD>", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>"]
    specials += ["<|CHATBOT_TOKEN|>", "<image>", "<|START_OF_IMG|>", "<|END_OF_IMG|>", "<|IMG_PATCH|>"]
    specials += ["<|IMG_LINE_BREAK|>", "TILE", "TILE_GLOBAL"]
    tok = make_tokenizer(specials, eos="<|END_OF_TURN_TOKEN|>", pad="<PAD>", bos="<BOS_TOKEN>")
    (patch_id,) = token_ids(tok, "<|IMG_PATCH|>")
    text = _text_config(tok, "<|END_OF_TURN_TOKEN|>", "<PAD>", head_dim=32, sliding_window=64)
    text.update(model_type="cohere2", layer_types=["sliding_attention", "full_attention"])
    config = AyaVisionConfig(
        vision_config=_siglip_config(28),
        text_config=text,
        image_token_index=patch_id,
        downsample_factor=2,
    )
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": 28, "width": 28}, crop_to_patches=True, min_patches=1, max_patches=2
    )
    processor = AyaVisionProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=14,
        img_size=28,
        downsample_factor=2,
        chat_template=AYA_TEMPLATE,
    )
    model = AyaVisionForConditionalGeneration(config)
    _save(model, processor, tok, "<|END_OF_TURN_TOKEN|>", "<PAD>", out)
    _rename_weights(out, "vision_tower.", "vision_tower.vision_model.")  # the published SigLIP names
    return out


def _qwen3_5(out: Path) -> Path:
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = make_tokenizer(QWEN2_VL_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>")
    text = _text_config(
        tok,
        "<|im_end|>",
        "<|endoftext|>",
        head_dim=32,
        rope_parameters=GLM_ROPE,
        layer_types=["linear_attention", "full_attention"],
        linear_key_head_dim=128,  # the published width; vLLM's CPU gated-delta-net kernel takes no other
        linear_value_head_dim=128,
        linear_num_key_heads=1,
        linear_num_value_heads=2,
    )
    config = Qwen3_5Config(
        text_config=text,
        vision_config=_qwen_vision(patch_size=16, num_position_embeddings=16),
        **qwen_token_ids(tok),
    )
    image_processor = Qwen2VLImageProcessorPil(
        size={"shortest_edge": 4 * 32 * 32, "longest_edge": 16 * 32 * 32}, patch_size=16
    )
    processor = images_only_processor(Qwen3VLProcessor)(
        image_processor=image_processor, tokenizer=tok, chat_template=QWEN2_VL_TEMPLATE
    )
    model = Qwen3_5ForConditionalGeneration(config)
    return _save(model, processor, tok, "<|im_end|>", "<|endoftext|>", out, "Qwen3VLVideoProcessor")


def _llama4(out: Path) -> Path:
    """Needs torchvision: transformers has Llama 4's image processor only as a torchvision backend."""
    from transformers import Llama4Config, Llama4ForConditionalGeneration, Llama4Processor
    from transformers.models.llama4.image_processing_llama4 import Llama4ImageProcessor

    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad|>", "<|header_start|>"]
    specials += ["<|header_end|>", "<|eot|>", "<|image_start|>", "<|image_end|>", "<|image|>", "<|patch|>"]
    specials += ["<|tile_x_separator|>", "<|tile_y_separator|>"]
    tok = make_tokenizer(specials, eos="<|eot|>", pad="<|finetune_right_pad|>", bos="<|begin_of_text|>")
    boi, eoi, patch, bos = token_ids(
        tok, "<|image_start|>", "<|image_end|>", "<|patch|>", "<|begin_of_text|>"
    )
    text = _text_config(
        tok,
        "<|eot|>",
        "<|finetune_right_pad|>",
        head_dim=32,
        intermediate_size_mlp=2 * WIDTH,
        num_local_experts=2,
        interleave_moe_layer_step=2,
        attention_chunk_size=128,  # vLLM wants a multiple of its 128-token KV block
    )
    text["bos_token_id"] = bos
    config = Llama4Config(
        vision_config=dict(
            hidden_size=64,
            intermediate_size=256,  # 64 x 4 after the pixel shuffle
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=28,
            patch_size=14,
            vision_output_dim=WIDTH,
            projector_input_dim=WIDTH,
            projector_output_dim=WIDTH,
            initializer_range=INIT,
        ),
        text_config=text,
        boi_token_index=boi,
        eoi_token_index=eoi,
        image_token_index=patch,
    )
    image_processor = Llama4ImageProcessor(size={"height": 28, "width": 28}, max_patches=4)
    processor = Llama4Processor(
        image_processor=image_processor, tokenizer=tok, patch_size=14, chat_template=LLAMA4_TEMPLATE
    )
    model = Llama4ForConditionalGeneration(config)
    return _save(model, processor, tok, "<|eot|>", "<|finetune_right_pad|>", out)


ARCHITECTURES: dict[str, Callable[[Path], Path]] = {
    "qwen2_5_vl": _qwen2_5_vl,
    "qwen3_vl": _qwen3_vl,
    "gemma3": _gemma3,
    "mistral3": _mistral3,
    "internvl": _internvl,
    "glm4v": _glm4v,
    "aya_vision": _aya_vision,
    "qwen3_5": _qwen3_5,
    "llama4": _llama4,
}
