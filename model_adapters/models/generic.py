"""Any current vision-language model: the checkpoint's own chat template over [image, ..., text].

`--model mis_vlm` picks this family for every config.model_type no other family claims (and
`family=generic`, or `--model mis_generic`, for any checkpoint). It keeps the paper's protocol (both
images first, in order, the question unchanged, greedy, no stop string, the task's token budget) and
the checkpoint's processor defaults; before generating it checks that n images became n image spans
in the input ids (model_adapters/image_spans.py). What one architecture needs beyond that is a
`Quirks` entry below, keyed by config.model_type; model_adapters/README.md lists the architectures
proven with tiny checkpoints.
"""

from model_adapters.families import Family, Quirks
from model_adapters.layouts import ChatLayout

# Architectures whose processor writes one image as several runs of image tokens: the token it writes
# once per image (a processor attribute naming it, or the token itself).
ARCHITECTURES = {
    # Pixtral rows: [IMG]*w [IMG_BREAK] ... [IMG]*w [IMG_END]
    "mistral3": Quirks(image_marker="image_end_token"),
    # tiles: <row_1_col_1><image>*k ... <global-img><image>*k<fake_token_around_image>
    "idefics3": Quirks(image_marker="<global-img>"),
    "smolvlm": Quirks(image_marker="<global-img>"),  # Idefics3's tiling (untested: needs num2words)
    # tiles: <|START_OF_IMG|>TILE_1<|IMG_PATCH|>*k ... TILE_GLOBAL<|IMG_PATCH|>*k<|END_OF_IMG|>
    "aya_vision": Quirks(image_marker="start_of_img_token"),
}

FAMILY = Family(
    name="generic",
    layout=ChatLayout(),
    default_checkpoint="",  # no paper checkpoint: pretrained= is required
    hf_processor="AutoProcessor",
    verify_image_spans=True,
    architectures=ARCHITECTURES,
    notes=(
        "Generic layout: the checkpoint's own chat template with one image item per image, in order, "
        "then the question unchanged; the checkpoint's processor defaults (no reference script exists)."
    ),
)
