"""LLaVA-NeXT-Interleave: repeated <image> lines in the qwen_1_5 (ChatML) conversation template."""

from model_adapters.adapter import MultiImageModel
from model_adapters.families import Family, register_family
from model_adapters.layouts import RawLayout

CHATML = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"
)

FAMILY = register_family(
    Family(
        name="llava_interleave",
        model_id="mis_llava_interleave",
        layout=RawLayout(image_block="{image}\n", template=CHATML),  # "<image>\n<image>\n{question}"
        default_checkpoint="llava-hf/llava-interleave-qwen-7b-hf",
        model_types=("llava",),
        hf_processor="LlavaProcessor",
    )
)


class MisLlavaInterleave(MultiImageModel):
    family_name = "llava_interleave"
