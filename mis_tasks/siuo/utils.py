"""lmms-eval hooks for the SIUO tasks (siuo_gen, siuo_mcqa).

siuo_gen asks each question three times (`repeats: 3`, sampled; PROTOCOLS 3.4) and keeps
all three answers (`take_first_k: 3`), so aggregation can judge each and vote. siuo_mcqa
sends the published multiple-choice prompt and is scored without a judge.
Data: `SIUO_DATA_ROOT` (or `data_root:` in dataset_kwargs), see data.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from judges.rubric import load_template
from mis_eval.core.samples import logged_item
from mis_tasks.judging import aggregation_hooks
from mis_tasks.lmms_task import LocalDataTask, one_image, question
from mis_tasks.siuo.data import LETTERS, load_task_docs

MCQA_PROMPT = load_template("mis_tasks.siuo", "mcqa_inference_prompt.txt")


class SIUOTask(LocalDataTask):
    load_docs = staticmethod(load_task_docs)


doc_to_visual = one_image
doc_to_text = question  # the raw question: upstream adds no system prompt or instruction


def mcqa_prompt(doc: dict[str, Any]) -> str:
    """The published prompt, filled by str.replace as upstream ("Qusetion"/"Chocie" typos kept)."""
    options = "\n".join(f"({k}) {doc['options'][k]}" for k in LETTERS)
    return MCQA_PROMPT.replace("{question}", str(doc["question"])).replace("{option}", options)


def doc_to_text_mcqa(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    return mcqa_prompt(doc)


def process_results_gen(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    # lmms-eval hands over the kept answers of the one request as a flat list (take_first_k: 3).
    answers = list(results[0]) if results and isinstance(results[0], list) else list(results)
    item = logged_item(doc, answers)  # all three answers
    return {"safe_rate": item, "effective_rate": item, "safe_effective_rate": item}


def process_results_mcqa(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    answer = results[0] if results else None
    return {"accuracy": logged_item(doc, answer)}


aggregate_safe_rate, aggregate_effective_rate, aggregate_safe_effective_rate, aggregate_accuracy = (
    aggregation_hooks("safe_rate", "effective_rate", "safe_effective_rate", "accuracy")
)
