"""LLaVA-OneVision: the checkpoint's chat template over [image, ..., text].

The reference script meant a Phi-style raw prompt for it but, because of a routing bug (PROTOCOLS
M3), actually sent Qwen2-VL-style messages through the chat template; that is what we do.
"""

from model_adapters.families import Family
from model_adapters.layouts import ChatLayout

FAMILY = Family(
    name="llava_onevision",
    layout=ChatLayout(),
    default_checkpoint="llava-hf/llava-onevision-qwen2-72b-ov-hf",
    model_types=("llava_onevision",),
    hf_processor="LlavaOnevisionProcessor",
    notes=(
        "The reference routed this model through its Qwen2-VL branch (bug M3), so its images were "
        "first resized by qwen_vl_utils (sides rounded to multiples of 28); here they go to the "
        "LLaVA-OneVision processor unchanged."
    ),
)
