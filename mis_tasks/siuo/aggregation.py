"""SIUO rates for lmms-eval's aggregation hooks, judged once per task and response set.

Lives outside utils.py because lmms-eval executes utils.py afresh for every `!function`,
so a memo there would not be shared by the hooks of one task. Uses the shared judge step
(mis_eval.pipeline); the siuo_gen items carry all three answers per question, which
`judge_in_aggregation` (one response per document) cannot pass on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mis_eval.core.record import Metric
from mis_eval.pipeline import aggregation_judge, judge_run
from mis_tasks.common import loaded
from mis_tasks.siuo.scoring import BENCHMARK, sample_with_responses

_MEMO: dict[tuple[str, int], dict[str, float | None]] = {}


def _answers(item: dict[str, Any]) -> list[Any]:
    return item["response"] if isinstance(item["response"], list) else [item["response"]]


def scores(task: str, items: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    key = (task, hash(tuple((str(i["id"]), repr(i["response"])) for i in items)))
    if key not in _MEMO:
        docs = loaded(task)
        samples = [sample_with_responses(task, n, docs[i["id"]], _answers(i)) for n, i in enumerate(items)]
        metrics: dict[str, Metric] = {}
        if task == "siuo_mcqa":  # no judge involved
            metrics = BENCHMARK.score(task, samples, [{} for _ in samples], {}).metrics
        elif (judge := aggregation_judge()) is not None:
            record, _ = judge_run(task, samples, judge, model={"name": "(lmms-eval run)"}, results_dir=None)
            metrics = record.metrics
        _MEMO[key] = {k: m.value for k, m in metrics.items()}
    return _MEMO[key]
