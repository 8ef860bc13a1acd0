"""Qwen2-VL: typed content items rendered by the checkpoint's chat template (reference vLLM script)."""

from model_adapters.adapter import MultiImageModel
from model_adapters.families import Family, register_family
from model_adapters.layouts import ChatLayout

# The reference processor settings: min_pixels=256*28*28, max_pixels=1280*28*28. vLLM takes them
# by those names; transformers 5 wants them as the image processor's size bounds.
PIXELS = {"min_pixels": 256 * 28 * 28, "max_pixels": 1280 * 28 * 28}
HF_PIXELS = {"size": {"shortest_edge": PIXELS["min_pixels"], "longest_edge": PIXELS["max_pixels"]}}

FAMILY = register_family(
    Family(
        name="qwen2_vl",
        model_id="mis_qwen2_vl",
        layout=ChatLayout(),
        default_checkpoint="Qwen/Qwen2-VL-7B-Instruct",
        model_types=("qwen2_vl",),
        hf_processor="Qwen2VLProcessor",
        hf_processor_kwargs=HF_PIXELS,
        mm_processor_kwargs=PIXELS,
    )
)


class MisQwen2VL(MultiImageModel):
    family_name = "qwen2_vl"
