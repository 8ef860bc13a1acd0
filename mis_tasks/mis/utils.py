"""lmms-eval hooks for the MIS tasks (mis_easy / mis_hard / mis_real).

Data comes from a local root (`MIS_DATA_ROOT`, or `data_root:` in dataset_kwargs) in the
layout of the MIS release (`mis_<split>.json`, `<split>_image/<n>/object1.png`, ...), or
from the Hugging Face dataset `Tuwhy/MIS_Test` when no root is given and the hub is
reachable. Judging runs in the aggregation step through the same pipeline as
`mis-eval judge`, so `lmms-eval --tasks mis_hard` prints the paper's four rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from mis_eval.core.samples import logged_item
from mis_tasks.common import open_image
from mis_tasks.judging import aggregation_hooks
from mis_tasks.lmms_task import LocalDataTask, question, record_name
from mis_tasks.mis.data import load_task_docs
from mis_tasks.mis.variants import DEFAULT, shown_images


class MISTask(LocalDataTask):
    """ConfigurableTask whose data comes from a validated local root (or a hub snapshot)."""

    load_docs = staticmethod(load_task_docs)


def doc_to_visual(doc: dict[str, Any]) -> list[Image.Image]:
    """The images of the task's variant (both, in order, for the paper's tasks), decoded only now.

    Decoding here keeps memory flat over the split.
    """
    paths = shown_images(doc.get("variant") or DEFAULT, list(doc["image_paths"]))
    return [open_image(p, record_name(doc)) for p in paths]


doc_to_text = question  # unchanged: MIS adds no system prompt or instruction (PROTOCOLS 1.4)


def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    item = logged_item(doc, results[0] if results else None)
    return {"ASR": item, "RSR": item, "RR": item, "HR": item}


aggregate_asr, aggregate_rsr, aggregate_rr, aggregate_hr = aggregation_hooks("ASR", "RSR", "RR", "HR")
