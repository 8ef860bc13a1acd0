"""LLaVA-NeXT-Interleave: repeated <image> lines in the qwen_1_5 (ChatML) conversation template."""

from model_adapters.families import Family
from model_adapters.layouts import RawLayout

CHATML = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"
)

FAMILY = Family(
    name="llava_interleave",
    layout=RawLayout(image_block="{image}\n", template=CHATML),  # "<image>\n<image>\n{question}"
    default_checkpoint="llava-hf/llava-interleave-qwen-7b-hf",
    model_types=("llava",),
    hf_processor="LlavaProcessor",
)
