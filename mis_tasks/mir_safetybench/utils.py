"""lmms-eval hooks for the MIR-SafetyBench tasks (`mir_<relation>`, variants, group `mir_safetybench`).

Data comes from a local root in the release layout (`MIR_DATA_ROOT`, or `data_root:` in
dataset_kwargs) or from the hub dataset `thu-coai/MIR-SafetyBench` (data.py). Judging runs in the
aggregation step through the same pipeline as `mis-eval judge`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from mis_eval.core.samples import logged_item
from mis_tasks.common import open_image
from mis_tasks.judging import aggregation_hooks
from mis_tasks.lmms_task import LocalDataTask, record_name
from mis_tasks.mir_safetybench.data import load_task_docs
from mis_tasks.mir_safetybench.variants import DEFAULT, shown_images


class MIRTask(LocalDataTask):
    """ConfigurableTask whose records come from a validated release-layout root (or the hub)."""

    load_docs = staticmethod(load_task_docs)


def doc_to_visual(doc: dict[str, Any]) -> list[Image.Image]:
    """The images of the task's variant (all, in order, for the paper's tasks), decoded only now."""
    paths = shown_images(doc.get("variant") or DEFAULT, list(doc["image_paths"]), doc.get("position"))
    return [open_image(p, record_name(doc)) for p in paths]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    """The attack prompt (`revised_prompt`), unchanged; the images come first (models/qwen2_5_VL_3B.py)."""
    return str(doc["revised_prompt"])


def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    return {"ASR": logged_item(doc, results[0] if results else None)}


(aggregate_asr,) = aggregation_hooks("ASR")
