"""Idefics3: a raw prompt with "Image-1: <image>" blocks; images resized to longest_edge 4*364."""

from model_adapters.families import Family
from model_adapters.layouts import RawLayout

SIZE = {"size": {"longest_edge": 4 * 364}}

FAMILY = Family(
    name="idefics3",
    # "<|begin_of_text|>User:Image-1: <image>\n\nImage-2: <image>\n\n{question}"
    # "<end_of_utterance>\nAssistant:"
    layout=RawLayout(
        image_block="Image-{i}: {image}\n",
        joiner="\n",
        before_question="\n",
        template="<|begin_of_text|>User:{content}<end_of_utterance>\nAssistant:",
    ),
    default_checkpoint="HuggingFaceM4/Idefics3-8B-Llama3",
    model_types=("idefics3",),
    hf_processor="Idefics3Processor",
    hf_processor_kwargs=SIZE,
    mm_processor_kwargs=SIZE,
)
