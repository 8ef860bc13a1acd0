"""Phi-3.5-Vision: a raw prompt with numbered <|image_i|> tags; remote code, so vLLM only."""

from model_adapters.families import Family
from model_adapters.layouts import RawLayout

FAMILY = Family(
    name="phi3_5_v",
    # "<|user|>\n<|image_1|>\n<|image_2|>\n{question}<|end|>\n<|assistant|>\n"
    layout=RawLayout(image_block="<|image_{i}|>\n", template="<|user|>\n{content}<|end|>\n<|assistant|>\n"),
    default_checkpoint="microsoft/Phi-3.5-vision-instruct",
    model_types=("phi3_v",),
    trust_remote_code=True,
    aliases=("mis_phi3_v",),
)
