"""Run records of the judge step, for `mis-eval judge`, `run` and the demo.

samples -> judge (mis_tasks.judging) -> benchmark.score -> RunRecord, written to the results
folder. Whichever entry point judges, a response is judged once: verdicts live in the judge's
persistent cache. The run's secrets are masked in everything written, whatever brought them in
(a model or judge server echoing its key, credentials in lmms-eval's recorded model args).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from judges.base import JudgeInfo, Status, Verdict
from mis_eval.core.defaults import MAX_UNUSABLE
from mis_eval.core.record import (
    Agreement,
    Completeness,
    Counts,
    DataInfo,
    JudgeRecord,
    ModelInfo,
    RunRecord,
    TaskInfo,
    utc_now,
)
from mis_eval.core.samples import Sample
from mis_eval.core.secrets import redact_args, run_secrets
from mis_eval.records import DEFAULT_RESULTS_DIR, write_run
from mis_tasks.registry import benchmark_for_task

DEFAULT_MAX_UNUSABLE = MAX_UNUSABLE  # above it a run record is marked incomplete (see defaults)


def _counts(samples: Sequence[Sample], verdicts: Sequence[Mapping[str, Verdict]]) -> Counts:
    flat = [v for per in verdicts for v in per.values()]
    return Counts(
        samples=len(samples),
        generation_failed=sum(s.response is None for s in samples),
        verdicts=len(flat),
        ok=sum(v.status is Status.OK for v in flat),
        error=sum(v.status is Status.ERROR for v in flat),
        unparseable=sum(v.status is Status.UNPARSEABLE for v in flat),
        cached=sum(v.cached for v in flat),
    )


def completeness(counts: Counts, max_unusable: float = DEFAULT_MAX_UNUSABLE) -> Completeness:
    """Whether a run's numbers can be used: at most `max_unusable` of its verdicts unusable.

    A task scored without a judge (SIUO multiple choice) has no verdicts and nothing unusable.
    """
    unusable = counts.error + counts.unparseable
    fraction = unusable / counts.verdicts if counts.verdicts else None
    complete = fraction is None or fraction <= max_unusable
    reason = None
    if fraction is not None and not complete:
        reason = (
            f"{unusable} of {counts.verdicts} verdicts unusable ({100 * fraction:.1f}% > "
            f"max_unusable {100 * max_unusable:g}%): judge errors {counts.error}, "
            f"unparseable {counts.unparseable}"
        )
    return Completeness(complete, unusable, counts.verdicts, fraction, max_unusable, reason)


def _setting_notes(info: JudgeInfo) -> list[str]:
    if info.settings.get("hardened"):
        return [
            "hardened judge mode: the judged response was wrapped in hash-tagged delimiters against "
            "prompt injection, so the judge did not see the reference prompt (a separate judge id; "
            "the default paper mode sends the reference request unchanged)"
        ]
    return []


def _usage_notes(accounting: Mapping[str, Any]) -> list[str]:
    bad = accounting.get("invalid_usage")
    if not bad:
        return []
    return [
        f"{bad} judge replies reported token counts that are no counts (NaN, Infinity, negative): "
        "counted as 0, so tokens and cost_usd are a lower bound"
    ]


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
    notes: Sequence[str] = (),
) -> tuple[RunRecord, Path | None]:
    """Score verdicts with the task's benchmark and write the run record.

    `limit` is lmms-eval's --limit: such a run covers part of the data, which the record says
    (task.data.limit) so the leaderboard never ranks it beside full runs. The record is marked
    incomplete when more than `max_unusable` of the verdicts are unusable (still written, nothing lost).
    """
    args = str(model.get("args") or "")
    key_env = info.settings.get("api_key_env")
    scrub = run_secrets(args, [key_env] if isinstance(key_env, str) else [])
    model = {**model, "args": redact_args(args)}
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
        breakdown=list(scores.breakdown),
        counts=counts,
        completeness=status,
        accounting=dict(accounting),
        generation=dict(generation or {}),
        notes=([info.approximation] if info.approximation else [])
        + _setting_notes(info)
        + scores.notes
        + list(notes)
        + ([f"partial run: lmms-eval --limit {limit} ({len(samples)} samples)"] if limit is not None else [])
        + ([f"INCOMPLETE: {status.reason}"] if not status.complete else [])
        + _usage_notes(accounting),
        source=dict(source or {}),
        agreement=[Agreement.from_dict(a) for a in agreement],
        started_at=started or utc_now(),
        finished_at=utc_now(),
    )
    if scrub:
        plain = record.to_dict()
        clean = scrub.deep(plain)
        if clean != plain:
            record = RunRecord.from_dict(clean)
    rows = (scrub.deep(row) for row in sample_rows(samples, verdicts))
    path = write_run(record, rows, results_dir) if results_dir is not None else None
    return record, path
