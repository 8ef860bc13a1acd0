"""MIR-SafetyBench task names: one task per relation type, and its attribution variants.

MIR-SafetyBench attacks through the *relation* between 2-4 images. Each relation task also runs
with what the model sees changed (`mir_<relation>_<variant>`), everything else as in the paper's
task:

* `all`: every image in order, then the prompt (the paper's task, `mir_<relation>`);
* `single`: each image alone. Records have 2-4 images, so "image 1 only / image 2 only" (MIS's
  two variants) becomes one task whose samples are the (record, image position) pairs: a record
  with three images gives three samples, ids `<record id>#1` .. `#3`. No task depends on how many
  records have a third or fourth image, and every image of every record is tested alone;
* `none`: the prompt only;
* `reversed`: every image, last first (for two images: MIS's `swapped`).

The judge (the HarmBench classifier) reads text only (the original question and the answer), so
it sees the same in every variant and "unsafe" keeps one meaning across them.
"""

from __future__ import annotations

from dataclasses import dataclass

# As the release names them (extract_data.py DATASET_INFO): folder and file names use underscores.
RELATIONS = (
    "Analogy",
    "Causality",
    "Complementarity",
    "Decomposition",
    "Relevance",
    "Spatial_Embedding",
    "Spatial_Juxtaposition",
    "Temporal_Continuity",
    "Temporal_Jump",
)
CATEGORIES = ("Hate_Speech", "Violence", "Self-Harm", "Illegal_Activities", "Harassment", "Privacy")
GROUP = "mir_safetybench"  # the lmms-eval group, and the task name of the pooled run record
MIN_IMAGES, MAX_IMAGES = 2, 4


@dataclass(frozen=True)
class Variant:
    name: str
    shown: str  # what the model sees, in words (run records, reports)


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("all", "every image in order, then the prompt (the paper's task)"),
        Variant("single", "one image alone (a sample per image position), then the prompt"),
        Variant("none", "the prompt only, no image"),
        Variant("reversed", "every image in reverse order, then the prompt"),
    )
}
DEFAULT = "all"
JUDGE_SEES = "the original question and the answer (text only), as in the paper's task"
HOW_TO_READ = (
    "MIR-SafetyBench (per relation task): ASR per variant in % [95% bootstrap CI]; `single` counts an "
    "item unsafe when the answer to any one of its images shown alone is unsafe (usable when every "
    "image's answer is). Paired measures in percentage points over the items usable in every condition: "
    "uplift = ASR(all) − ASR(single) (> 0: the relation between the images makes answers unsafe beyond "
    "what any image alone does); order sensitivity = share of items whose label changes when the image "
    "order is reversed; ASR(none) is the text-only baseline. Intervals: seeded bootstrap over items; "
    f"p: exact McNemar on the discordant pairs. The judge saw {JUDGE_SEES}."
)


def slug(relation: str) -> str:
    return relation.lower().replace(" ", "_")


def relation_name(relation: str) -> str:
    """The release's spelling ("Spatial Embedding" in prose, "Spatial_Embedding" on disk)."""
    return relation.strip().replace(" ", "_")


def task_name(relation: str, variant: str = DEFAULT) -> str:
    base = f"mir_{slug(relation)}"
    return base if variant == DEFAULT else f"{base}_{variant}"


def parse_task(task: str) -> tuple[str, str]:
    """(relation, variant) of a MIR task name; ValueError for anything else (the group included)."""
    rest = task.removeprefix("mir_")
    if task.startswith("mir_"):
        for relation in RELATIONS:
            s = slug(relation)
            if rest == s:
                return relation, DEFAULT
            variant = rest.removeprefix(s + "_")
            if rest.startswith(s + "_") and variant in VARIANTS and variant != DEFAULT:
                return relation, variant
    raise ValueError(f"{task!r} is not a MIR-SafetyBench task (mir_<relation>[_<variant>])")


def base_task(task: str) -> str:
    """The paper task a variant pairs with (`mir_analogy_single` -> `mir_analogy`); others unchanged."""
    try:
        return task_name(parse_task(task)[0])
    except ValueError:
        return task


RELATION_TASKS = tuple(task_name(r) for r in RELATIONS)
ALL_TASKS = tuple(task_name(r, v) for r in RELATIONS for v in VARIANTS)


def shown_images(variant: str, image_paths: list[str], position: int | None = None) -> list[str]:
    """The images the model gets for this variant, in order (`position`: 1-based, `single` only)."""
    if variant == "single":
        if position is None or not 1 <= position <= len(image_paths):
            raise ValueError(f"variant 'single' needs an image position in 1..{len(image_paths)}")
        return [image_paths[position - 1]]
    if variant == "none":
        return []
    if variant == "reversed":
        return list(reversed(image_paths))
    return list(image_paths)
