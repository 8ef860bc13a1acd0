"""The judge step shared by lmms-eval's aggregation, `mis-eval judge` and the demo.

samples -> benchmark.requests -> judge (cached, batched) -> benchmark.score -> RunRecord.
Whichever entry point runs it, a response is judged once: verdicts live in the judge's
persistent cache, and within one process the last result per task is memoized.
"""

from __future__ import annotations

import atexit
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from judges.base import Judge, JudgeInfo, Status, Verdict
from judges.registry import get_judge, parse_options
from mis_eval.core.record import (
    Agreement,
    BreakdownRow,
    Completeness,
    Counts,
    DataInfo,
    JudgeRecord,
    ModelInfo,
    RunRecord,
    TaskInfo,
    utc_now,
)
from mis_eval.core.samples import Sample, split_response
from mis_eval.records import DEFAULT_RESULTS_DIR, write_run
from mis_tasks.common import loaded
from mis_tasks.registry import Benchmark, benchmark_for_task

ENV_JUDGE = "MIS_EVAL_JUDGE"  # judge name, e.g. "gpt4o", "local", "keyword"; "none" skips judging
# Above this fraction of unusable verdicts (judge error / unparseable) a run record is marked
# incomplete and `mis-eval judge` / `run` exit non-zero: the rates would describe a biased subset.
DEFAULT_MAX_UNUSABLE = 0.05
ENV_JUDGE_ARGS = (
    "MIS_EVAL_JUDGE_ARGS"  # e.g. "base_url=http://127.0.0.1:8000/v1,model=Qwen/Qwen2.5-VL-7B-Instruct"
)


def default_judge_name() -> str:
    """GPT-4o when an OpenAI key is present, else the offline keyword judge (labelled as such)."""
    return os.environ.get(ENV_JUDGE) or ("gpt4o" if os.environ.get("OPENAI_API_KEY") else "keyword")


def make_judge(name: str | None = None, options: str | Mapping[str, Any] | None = None) -> Judge:
    name = name or default_judge_name()
    opts = parse_options(options) if isinstance(options, str) or options is None else dict(options)
    if options is None and name == os.environ.get(ENV_JUDGE):
        opts = parse_options(os.environ.get(ENV_JUDGE_ARGS))
    return get_judge(name, **opts)


def judge_samples(
    bench: Benchmark, samples: Sequence[Sample], judge: Judge, *, progress: bool = True
) -> tuple[list[dict[str, Verdict]], dict[str, bool]]:
    """Verdicts per sample ({verdict key: verdict}); failed generations get none and are excluded."""
    requests, owners = [], []
    per_sample: list[dict[str, Verdict]] = [{} for _ in samples]
    supports: dict[str, bool] = {}
    for i, sample in enumerate(samples):
        if sample.response is None:
            continue  # a failed generation is counted as such, not as a judge error
        for req in bench.requests(sample):
            supports[req.rubric.name] = judge.supports(req.rubric)
            if supports[req.rubric.name]:
                requests.append(req)
                owners.append((i, req))
    verdicts = judge.judge([r for _, r in owners], progress=progress) if owners else []
    for (i, req), verdict in zip(owners, verdicts, strict=True):
        per_sample[i][req.verdict_key] = verdict
    return per_sample, supports


def _counts(samples: Sequence[Sample], verdicts: Sequence[Mapping[str, Verdict]]) -> dict[str, int]:
    flat = [v for per in verdicts for v in per.values()]
    return {
        "samples": len(samples),
        "generation_failed": sum(s.response is None for s in samples),
        "verdicts": len(flat),
        "ok": sum(v.status is Status.OK for v in flat),
        "error": sum(v.status is Status.ERROR for v in flat),
        "unparseable": sum(v.status is Status.UNPARSEABLE for v in flat),
        "cached": sum(v.cached for v in flat),
    }


def completeness(counts: Mapping[str, int], max_unusable: float = DEFAULT_MAX_UNUSABLE) -> dict[str, Any]:
    """Whether a run's numbers can be used: at most `max_unusable` of its verdicts unusable.

    A task scored without a judge (SIUO multiple choice) has no verdicts and nothing unusable.
    """
    verdicts = counts.get("verdicts", 0)
    unusable = counts.get("error", 0) + counts.get("unparseable", 0)
    fraction = unusable / verdicts if verdicts else None
    complete = fraction is None or fraction <= max_unusable
    reason = None
    if fraction is not None and not complete:
        reason = (
            f"{unusable} of {verdicts} verdicts unusable ({100 * fraction:.1f}% > "
            f"max_unusable {100 * max_unusable:g}%): judge errors {counts.get('error', 0)}, "
            f"unparseable {counts.get('unparseable', 0)}"
        )
    return {
        "complete": complete,
        "unusable": unusable,
        "verdicts": verdicts,
        "unusable_fraction": fraction,
        "max_unusable": max_unusable,
        "reason": reason,
    }


def _setting_notes(info: JudgeInfo) -> list[str]:
    if info.settings.get("hardened"):
        return [
            "hardened judge mode: the judged response was wrapped in hash-tagged delimiters against "
            "prompt injection, so the judge did not see the reference prompt (a separate judge id; "
            "the default paper mode sends the reference request unchanged)"
        ]
    return []


def sample_rows(samples: Sequence[Sample], verdicts: Sequence[Mapping[str, Verdict]]) -> list[dict[str, Any]]:
    return [
        {
            "task": s.task,
            "doc_id": s.doc_id,
            "doc": s.doc,
            "response": s.response,
            "generation_error": s.error,
            **({"extra": s.extra} if s.extra else {}),
            "verdicts": {k: v.to_dict() for k, v in per.items()},
        }
        for s, per in zip(samples, verdicts, strict=True)
    ]


def judge_run(
    task: str,
    samples: Sequence[Sample],
    judge: Judge,
    *,
    model: Mapping[str, Any],
    generation: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    results_dir: Path | str | None = DEFAULT_RESULTS_DIR,
    progress: bool = True,
    limit: int | float | None = None,
) -> tuple[RunRecord, Path | None]:
    """Judge one model x task and write its run record (skipped when results_dir is None)."""
    started = utc_now()
    bench = benchmark_for_task(task)
    verdicts, supports = judge_samples(bench, samples, judge, progress=progress)
    return record_run(
        task,
        samples,
        verdicts,
        supports,
        judge.info(bench.rubrics(task)),
        judge.accounting(),
        model=model,
        generation=generation,
        source=source,
        results_dir=results_dir,
        started=started,
        limit=limit,
    )


def record_run(
    task: str,
    samples: Sequence[Sample],
    verdicts: Sequence[Mapping[str, Verdict]],
    supports: Mapping[str, bool],
    info: JudgeInfo,
    accounting: Mapping[str, Any],
    *,
    model: Mapping[str, Any],
    generation: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    results_dir: Path | str | None = DEFAULT_RESULTS_DIR,
    started: str | None = None,
    agreement: Sequence[Mapping[str, Any]] = (),
    limit: int | float | None = None,
    max_unusable: float = DEFAULT_MAX_UNUSABLE,
) -> tuple[RunRecord, Path | None]:
    """Score verdicts with the task's benchmark and write the run record.

    `limit` is lmms-eval's --limit: such a run covers part of the data, which the record says
    (task.data.limit) so the leaderboard never ranks it beside full runs. The record is marked
    incomplete when more than `max_unusable` of the verdicts are unusable (still written, nothing lost).
    """
    bench = benchmark_for_task(task)
    scores = bench.score(task, samples, verdicts, supports)
    fingerprints = sorted(
        {str(s.doc.get("data_fingerprint")) for s in samples if s.doc.get("data_fingerprint")}
    )
    counts = _counts(samples, verdicts)
    status = completeness(counts, max_unusable)
    record = RunRecord(
        model=ModelInfo.from_dict(model),
        task=TaskInfo(
            name=task,
            benchmark=bench.name,
            version=bench.version,
            data=DataInfo(fingerprint=",".join(fingerprints) or None, n=len(samples), limit=limit),
            extra=dict(scores.task),
        ),
        judge=JudgeRecord.from_dict(
            asdict(info) | {"settings": dict(info.settings), "prompt_sha256": dict(info.prompt_sha256)}
        ),
        metrics=scores.metrics,
        breakdown=[
            BreakdownRow(by=p["by"], group=p["group"], metrics=p["metrics"]) for p in scores.breakdown
        ],
        counts=Counts.from_dict(counts),
        completeness=Completeness.from_dict(status),
        accounting=dict(accounting),
        generation=dict(generation or {}),
        notes=([info.approximation] if info.approximation else [])
        + _setting_notes(info)
        + scores.notes
        + ([f"partial run: lmms-eval --limit {limit} ({len(samples)} samples)"] if limit is not None else [])
        + ([f"INCOMPLETE: {status['reason']}"] if not status["complete"] else []),
        source=dict(source or {}),
        agreement=[Agreement.from_dict(a) for a in agreement],
        started_at=started or utc_now(),
        finished_at=utc_now(),
    )
    path = write_run(record, sample_rows(samples, verdicts), results_dir) if results_dir is not None else None
    return record, path


_MEMO: dict[tuple[str, int], dict[str, float | None]] = {}
_WARNED: set[str] = set()


def aggregation_judge() -> Judge | None:
    """The judge for lmms-eval's aggregation hooks (None: MIS_EVAL_JUDGE=none).

    Plain `lmms-eval` shows only its table, so when the judge is not the paper's (the keyword
    fallback without an API key) the output says so: once now, and once after the table.
    """
    name = default_judge_name()
    if name == "none":
        return None
    judge = make_judge(name)
    info = judge.info(())
    if info.approximation and info.id not in _WARNED:
        _WARNED.add(info.id)
        message = (
            f"mis-eval: the rates are judged by '{info.id}', an approximation of the paper's "
            f"GPT-4o judge ({info.approximation}); set OPENAI_API_KEY or MIS_EVAL_JUDGE for the paper's judge"
        )
        print(f"WARNING: {message}", file=sys.stderr)
        atexit.register(print, f"NOTE: {message}")
    return judge


def judge_in_aggregation(task: str, pairs: Sequence[tuple[dict[str, Any], Any]]) -> dict[str, float | None]:
    """Rates for lmms-eval's aggregation hooks; computed once per task and response set.

    The run record is written by `mis-eval run` / `mis-eval judge`, which know the model;
    they reuse the verdicts through the judge cache, so nothing is judged twice.
    """
    key = (task, hash(tuple((str(d.get("id")), str(r)) for d, r in pairs)))
    if key in _MEMO:
        return _MEMO[key]
    judge = aggregation_judge()
    if judge is None:
        _MEMO[key] = {}
        return _MEMO[key]
    samples = []
    for i, (doc, text) in enumerate(pairs):
        response, error = split_response(text if isinstance(text, str) else None)
        samples.append(Sample(task=task, doc_id=i, doc=doc, response=response, error=error))
    record, _ = judge_run(task, samples, judge, model={"name": "(lmms-eval run)"}, results_dir=None)
    _MEMO[key] = {k: m.value for k, m in record.metrics.items()}
    return _MEMO[key]


def aggregate_metric(metric: str, items: Sequence[Mapping[str, Any]]) -> float:
    """Body of a task's lmms-eval aggregation hook: judge the logged items once, return one rate.

    Each item is the `{"task", "id", "response"}` a task's process_results logs; NaN marks a
    rate this judge cannot give (lmms-eval's table has no 'missing').
    """
    if not items:
        return math.nan
    task = str(items[0]["task"])
    docs = loaded(task)
    value = judge_in_aggregation(task, [(docs[str(i["id"])], i["response"]) for i in items]).get(metric)
    return math.nan if value is None else value
