"""DeepSeek-VL2: its "deepseek" conversation format with an empty system prompt; vLLM only.

The reference generated at most 512 new tokens for this family (1024 for the others), so that is
the default cap here (max_new_tokens= overrides it). Unlike the reference we do not keep the EOS
text in responses (bug M6), nor drop items whose generation raised: they are recorded failures.
"""

from model_adapters.families import Family
from model_adapters.layouts import RawLayout

FAMILY = Family(
    name="deepseek_vl2",
    # "<|User|>: <image>\n<image>\n{question}\n\n<|Assistant|>:"
    layout=RawLayout(image_block="{image}\n", template="<|User|>: {content}\n\n<|Assistant|>:"),
    default_checkpoint="deepseek-ai/deepseek-vl2",
    model_types=("deepseek_vl_v2",),
    vllm_kwargs={"hf_overrides": {"architectures": ["DeepseekVLV2ForCausalLM"]}},
    max_new_tokens=512,
    notes=(
        "At most 512 new tokens, as the reference; the end-of-sentence text the reference kept in "
        "responses (skip_special_tokens=False) is not kept here."
    ),
)
