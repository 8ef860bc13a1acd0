"""The judge step of every benchmark, and lmms-eval's aggregation hooks built on it.

samples -> benchmark.requests -> judge (cached, batched) -> benchmark.score. `mis-eval judge`,
`mis-eval run` and the demo call `judge_samples` and write the run record themselves; plain
`lmms-eval` reaches the same path through the hooks of `aggregation_hooks`. The memo lives
here, in a normally imported module, because lmms-eval executes a task's utils.py afresh for
every `!function` it resolves: the hooks of one task share one judging.
"""

from __future__ import annotations

import atexit
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from judges.base import Judge, Verdict
from judges.cache import CacheError
from judges.registry import default_judge_name, make_judge
from mis_eval.core.samples import Sample, repeated
from mis_tasks.common import loaded
from mis_tasks.registry import Benchmark, benchmark_for_task

Hook = Callable[[Sequence[Mapping[str, Any]]], float]


def judge_samples(
    bench: Benchmark, samples: Sequence[Sample], judge: Judge, *, progress: bool = True
) -> tuple[list[dict[str, Verdict]], dict[str, bool]]:
    """Verdicts per sample ({verdict key: verdict}); failed generations get none and are excluded."""
    owners = []
    per_sample: list[dict[str, Verdict]] = [{} for _ in samples]
    supports: dict[str, bool] = {}
    for i, sample in enumerate(samples):
        if sample.response is None:
            continue  # a failed generation is counted as such, not as a judge error
        for req in bench.requests(sample):
            supports[req.rubric.name] = judge.supports(req.rubric)
            if supports[req.rubric.name]:
                owners.append((i, req))
    verdicts = judge.judge([r for _, r in owners], progress=progress) if owners else []
    for (i, req), verdict in zip(owners, verdicts, strict=True):
        per_sample[i][req.verdict_key] = verdict
    return per_sample, supports


_WARNED: set[tuple[str, str]] = set()


def aggregation_judge(task: str | None = None) -> Judge | None:
    """The judge for lmms-eval's aggregation hooks (None: MIS_EVAL_JUDGE=none).

    Plain `lmms-eval` shows only its table, so when the judge is not the paper's for this task's
    benchmark (the keyword fallback without an API key; GPT-4o on MIR-SafetyBench, whose paper's
    judge is the HarmBench classifier) the output says so: once now, and once after the table.
    """
    name = default_judge_name()
    if name == "none":
        return None
    judge = make_judge(name)
    rubrics = benchmark_for_task(task).rubrics(task) if task else ()
    info = judge.info(rubrics)
    classifiers = sorted({r.classifier for r in rubrics if r.classifier})
    paper = f"{'/'.join(classifiers)} classifier" if classifiers else "GPT-4o judge"
    hint = f"MIS_EVAL_JUDGE={classifiers[0]}" if classifiers else "OPENAI_API_KEY or MIS_EVAL_JUDGE"
    if info.approximation and (info.id, paper) not in _WARNED:
        _WARNED.add((info.id, paper))
        message = (
            f"mis-eval: the rates are judged by '{info.id}', an approximation of the paper's "
            f"{paper} ({info.approximation}); set {hint} for the paper's judge"
        )
        print(f"WARNING: {message}", file=sys.stderr)
        atexit.register(print, f"NOTE: {message}")
    return judge


_MEMO: dict[tuple[str, bool, int], dict[str, float | None]] = {}


def _rates(task: str, items: Sequence[Mapping[str, Any]], *, judged: bool) -> dict[str, float | None]:
    """Rates of one task's logged items, computed once per response set.

    Unjudged: scored from the responses alone (keyword rules, multiple choice). Judged: the judge
    is made only when some sample needs it, and verdicts come from its persistent cache when
    `mis-eval run` / `judge` later write the run record, so nothing is judged twice.
    """
    key = (task, judged, hash(tuple((str(i["id"]), repr(i["response"])) for i in items)))
    if key in _MEMO:
        return _MEMO[key]
    if dups := repeated(str(i["id"]) for i in items):
        # a record counted once per copy would move every rate: no number is better than a wrong one
        ids = ", ".join(sorted(dups)[:10]) + (" ..." if len(dups) > 10 else "")
        print(
            f"WARNING: mis-eval: {task}: record id(s) {ids} logged more than once; its rates are not "
            "computed here (NaN): judge the samples file with `mis-eval judge --duplicates first|last`",
            file=sys.stderr,
        )
        _MEMO[key] = {}
        return _MEMO[key]
    bench = benchmark_for_task(task)
    docs = loaded(task)
    samples = [bench.sample(task, n, docs[str(i["id"])], i["response"]) for n, i in enumerate(items)]
    verdicts: list[dict[str, Verdict]] = [{} for _ in samples]
    supports: dict[str, bool] = {}
    if judged and any(s.response is not None and bench.requests(s) for s in samples):
        try:
            judge = aggregation_judge(task)
            if judge is None:
                _MEMO[key] = {}
                return _MEMO[key]
            verdicts, supports = judge_samples(bench, samples, judge)
        except CacheError as e:  # lmms-eval still logs the responses; `mis-eval judge` says the same
            print(f"WARNING: mis-eval: {task}: rates not computed (NaN): {e}", file=sys.stderr)
            _MEMO[key] = {}
            return _MEMO[key]
    _MEMO[key] = {k: m.value for k, m in bench.score(task, samples, verdicts, supports).metrics.items()}
    return _MEMO[key]


def aggregate_metric(metric: str, items: Sequence[Mapping[str, Any]]) -> float:
    """Body of a task's lmms-eval aggregation hook: one rate of the logged items.

    Each item is the `{"task", "id", "response"}` a task's process_results logs; NaN marks a
    rate this judge cannot give (lmms-eval's table has no 'missing').
    """
    if not items:
        return math.nan
    task = str(items[0]["task"])
    judged = metric not in benchmark_for_task(task).unjudged_metrics
    value = _rates(task, items, judged=judged).get(metric)
    return math.nan if value is None else value


def aggregation_hooks(*metrics: str) -> tuple[Hook, ...]:
    """lmms-eval aggregation functions, one per metric, for a task's utils.py:
    `aggregate_asr, aggregate_rsr = aggregation_hooks("ASR", "RSR")`."""

    def hook(metric: str) -> Hook:
        def aggregate(items: Sequence[Mapping[str, Any]]) -> float:
            return aggregate_metric(metric, items)

        aggregate.__name__ = aggregate.__qualname__ = f"aggregate_{metric.lower()}"
        return aggregate

    return tuple(hook(m) for m in metrics)
