"""Qwen2-VL: typed content items rendered by the checkpoint's chat template (reference vLLM script)."""

from model_adapters.families import Family
from model_adapters.layouts import ChatLayout

# What the reference ran: qwen_vl_utils.process_vision_info resized every image to its defaults
# (multiples of 28, min_pixels 4*28*28, max_pixels 16384*28*28) before vLLM saw it, and vLLM got no
# mm_processor_kwargs. The min_pixels=256*28*28 / max_pixels=1280*28*28 processor of the reference
# script only rendered the chat template; its bounds never reached the images. vLLM takes the bounds
# by these names; transformers 5 wants them as the image processor's size bounds.
PIXELS = {"min_pixels": 4 * 28 * 28, "max_pixels": 16384 * 28 * 28}
HF_PIXELS = {"size": {"shortest_edge": PIXELS["min_pixels"], "longest_edge": PIXELS["max_pixels"]}}
NOTES = (
    "Images: qwen_vl_utils' default bounds (3,136-12,845,056 pixels, sides rounded to multiples of 28), "
    "resized once by the processor (the reference resized with qwen_vl_utils, then the processor: same "
    "sizes and tokens). The reference's max_model_len=4096 would have rejected prompts above 4,096 "
    "tokens; here the checkpoint's context applies and a prompt that does not fit is a failed generation."
)

FAMILY = Family(
    name="qwen2_vl",
    layout=ChatLayout(),
    default_checkpoint="Qwen/Qwen2-VL-7B-Instruct",
    model_types=("qwen2_vl",),
    hf_processor="Qwen2VLProcessor",
    hf_processor_kwargs=HF_PIXELS,
    mm_processor_kwargs=PIXELS,
    notes=NOTES,
)
