"""lmms-eval hooks for the VLGuard test tasks (vlguard_safe_safes, _safe_unsafes, _unsafes).

One image and one instruction per record, greedy decoding with 256 new tokens (the LLaVA
evaluation defaults, PROTOCOLS 4.4). Keyword rates need no judge and are computed here;
the LLM-judged rates go through the shared judge step in the aggregation hook.
Data: `VLGUARD_DATA_ROOT` (or `data_root:` in dataset_kwargs), see data.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PIL import Image

from mis_eval.core.samples import logged_item
from mis_tasks.common import loaded, open_image
from mis_tasks.lmms_task import LocalDataTask
from mis_tasks.vlguard.data import load_task_docs

LOCAL_METRICS = ("ASR", "refusal_rate")  # keyword rule, no judge


class VLGuardTask(LocalDataTask):
    load_docs = staticmethod(load_task_docs)


def doc_to_visual(doc: dict[str, Any]) -> list[Image.Image]:
    return [open_image(doc["image_path"], f"{doc['task']} record id={doc['id']}")]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    return str(doc["question"])


def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    item = logged_item(doc, results[0] if results else None)
    names = (
        ("win_rate", "win_rate_swapped", "refusal_rate")
        if doc["subset"] == "safe_safes"
        else ("ASR", "ASR_judge")
    )
    return {name: item for name in names}


def _aggregate(metric: str, items: Sequence[dict[str, Any]]) -> float:
    if not items:
        return math.nan
    task = items[0]["task"]
    docs = loaded(task)
    pairs = [(docs[i["id"]], i["response"]) for i in items]
    if metric in LOCAL_METRICS:
        from mis_eval.core.samples import Sample, split_response
        from mis_tasks.vlguard.scoring import BENCHMARK

        samples = [
            Sample(task, n, doc, *split_response(r if isinstance(r, str) else None))
            for n, (doc, r) in enumerate(pairs)
        ]
        value = BENCHMARK.score(task, samples, [{} for _ in samples], {}).metrics[metric].value
    else:
        from mis_eval.pipeline import judge_in_aggregation

        value = judge_in_aggregation(task, pairs).get(metric)
    return math.nan if value is None else value


def aggregate_asr(items: Sequence[dict[str, Any]]) -> float:
    return _aggregate("ASR", items)


def aggregate_asr_judge(items: Sequence[dict[str, Any]]) -> float:
    return _aggregate("ASR_judge", items)


def aggregate_win_rate(items: Sequence[dict[str, Any]]) -> float:
    return _aggregate("win_rate", items)


def aggregate_win_rate_swapped(items: Sequence[dict[str, Any]]) -> float:
    return _aggregate("win_rate_swapped", items)


def aggregate_refusal_rate(items: Sequence[dict[str, Any]]) -> float:
    return _aggregate("refusal_rate", items)
