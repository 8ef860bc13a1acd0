"""lmms-eval hooks for the VLGuard test tasks (vlguard_safe_safes, _safe_unsafes, _unsafes).

One image and one instruction per record, greedy decoding with 256 new tokens (the LLaVA
evaluation defaults, PROTOCOLS 4.4). The keyword rates (`unjudged_metrics` in scoring.py)
are scored without a judge; the LLM-judged rates make one in the aggregation hook.
Data: `VLGUARD_DATA_ROOT` (or `data_root:` in dataset_kwargs), see data.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mis_eval.core.samples import logged_item
from mis_tasks.judging import aggregation_hooks
from mis_tasks.lmms_task import LocalDataTask, one_image, question
from mis_tasks.vlguard.data import load_task_docs


class VLGuardTask(LocalDataTask):
    load_docs = staticmethod(load_task_docs)


doc_to_visual = one_image
doc_to_text = question


def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    item = logged_item(doc, results[0] if results else None)
    names = (
        ("win_rate", "win_rate_swapped", "refusal_rate")
        if doc["subset"] == "safe_safes"
        else ("ASR", "ASR_judge")
    )
    return {name: item for name in names}


aggregate_asr, aggregate_asr_judge, aggregate_win_rate, aggregate_win_rate_swapped, aggregate_refusal_rate = (
    aggregation_hooks("ASR", "ASR_judge", "win_rate", "win_rate_swapped", "refusal_rate")
)
