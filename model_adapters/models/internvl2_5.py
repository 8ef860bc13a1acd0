"""InternVL2.5: "Image-1: <image>" blocks in a string rendered by the tokenizer's chat template."""

from model_adapters.families import Family
from model_adapters.layouts import TextChatLayout

# "Image-1: <image>\n\nImage-2: <image>\n\n{question}"
LAYOUT = TextChatLayout(image_block="Image-{i}: {image}\n", joiner="\n", before_question="\n")

FAMILY = Family(
    name="internvl2_5",
    layout=LAYOUT,
    default_checkpoint="OpenGVLab/InternVL2_5-8B",
    model_types=("internvl_chat", "internvl"),
    # transformers-format checkpoints (model_type "internvl", the "-hf" repos) also run without vLLM;
    # their processor marks an image with <IMG_CONTEXT> rather than <image>.
    hf_processor="InternVLProcessor",
    hf_image_token="<IMG_CONTEXT>",
    trust_remote_code=True,
    # the reference's vLLM setting: at most 4 tiles (+ a thumbnail) per image; the transformers
    # processor calls it max_patches (default 12)
    hf_processor_kwargs={"max_patches": 4},
    mm_processor_kwargs={"max_dynamic_patch": 4},
    stop_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|end|>"),
    aliases=("mis_internvl",),
)
