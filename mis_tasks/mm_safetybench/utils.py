"""lmms-eval hooks for the MM-SafetyBench tasks (mm_safetybench_{sd,sd_typo,typo}, tiny too).

Each task is one image kind over the 13 scenarios with that kind's own question field.
Data: `MMSB_DATA_ROOT` (or `data_root:` in dataset_kwargs), see data.py; the TYPO task
also runs with no root at all (every image rendered). Judging runs in the aggregation
step through the shared pipeline, so lmms-eval prints the judged ASRs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from mis_eval.core.samples import logged_item
from mis_tasks.common import open_image
from mis_tasks.judging import aggregation_hooks
from mis_tasks.lmms_task import LocalDataTask, question, record_name
from mis_tasks.mm_safetybench.data import load_task_docs
from mis_tasks.mm_safetybench.typography import compose_sd_typo, render_typo


class MMSBTask(LocalDataTask):
    """ConfigurableTask whose records come from the validated local release layout."""

    load_docs = staticmethod(load_task_docs)


def doc_to_visual(doc: dict[str, Any]) -> list[Image.Image]:
    """The one image, decoded (or rendered) only now, so memory stays flat over the split."""
    where = record_name(doc)
    origin = doc["image_origin"]
    if origin == "file":
        return [open_image(doc["image_path"], where)]
    typo = render_typo(str(doc["key_phrase"]))
    if origin == "rendered":
        return [typo]
    return [compose_sd_typo(open_image(doc["sd_path"], where), typo)]


doc_to_text = question  # the variant's question field unchanged (upstream adds no instruction)


def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    item = logged_item(doc, results[0] if results else None)
    return {"ASR": item, "ASR_micro": item}


aggregate_asr, aggregate_asr_micro = aggregation_hooks("ASR", "ASR_micro")
