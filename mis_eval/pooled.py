"""Run records pooled over several tasks: a benchmark's overall rates from its tasks' judged samples.

A benchmark may declare `pooled = {name: member tasks}` (MIR-SafetyBench: `mir_safetybench` over
its nine relation tasks). When the records just written include every member for one model and
one judge (same id, prompts and verdict-relevant settings: the leaderboard's judge key) on the
same --limit, their per-sample files are read back and scored together as the pooled task: one
more run record, with the rates over all samples, each with its exact interval and breakdown (for
MIR: per relation and per category). Nothing is judged again: the verdicts are the members'.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from judges.base import JudgeInfo, Verdict
from mis_eval.core.record import RunRecord
from mis_eval.core.samples import Sample
from mis_eval.leaderboard.sources import judge_key
from mis_eval.pipeline import DEFAULT_MAX_UNUSABLE, record_run
from mis_eval.records import find_runs, read_run_samples
from mis_tasks.registry import benchmarks


def read_samples_file(path: Path, record: RunRecord) -> tuple[list[Sample], list[dict[str, Verdict]]]:
    """The samples and verdicts of the run record at `path` (its `.samples.jsonl`)."""
    samples, verdicts = [], []
    for n, row in enumerate(read_run_samples(path, record), start=1):
        try:
            samples.append(
                Sample(
                    row["task"],
                    int(row["doc_id"]),
                    dict(row["doc"]),
                    row.get("response"),
                    row.get("generation_error"),
                    dict(row.get("extra") or {}),
                )
            )
            verdicts.append({k: Verdict.from_dict(v) for k, v in row["verdicts"].items()})
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: sample {n}: malformed ({type(e).__name__}: {e})") from None
    return samples, verdicts


def _group(rec: RunRecord) -> tuple[str, str, str]:
    return rec.model.name, judge_key(rec.judge).sig, json.dumps(rec.task.data.limit)


def pooled_records(records: Sequence[RunRecord], results_dir: Path | str) -> list[RunRecord]:
    """The pooled records the given (just written) records complete, written next to them.

    A member not among `records` is the newest stored record of it in `results_dir` (same model,
    judge and --limit): judging one relation again writes the pool again, never leaving a pool of
    replaced records newest.
    """
    results = Path(results_dir)
    stored: list[RunRecord] | None = None  # read once, only when a pool lacks a member
    out: list[RunRecord] = []
    for bench in benchmarks().values():
        for pooled, members in bench.pooled.items():
            groups: dict[tuple[str, str, str], dict[str, RunRecord]] = {}
            for rec in records:
                if rec.task.name in members and rec.run_id:
                    _keep_newest(groups.setdefault(_group(rec), {}), rec)
            for key, found in groups.items():
                if missing := set(members) - set(found):
                    if stored is None:
                        stored = [r for _, r in find_runs([results], [])] if results.is_dir() else []
                    for rec in stored:
                        if rec.task.name in missing and rec.run_id and _group(rec) == key:
                            _keep_newest(found, rec)
                if set(found) == set(members):
                    out.append(_pool(pooled, [found[m] for m in members], results))
    return out


def _keep_newest(found: dict[str, RunRecord], rec: RunRecord) -> None:
    old = found.get(rec.task.name)
    if old is None or rec.finished_at >= old.finished_at:
        found[rec.task.name] = rec


def _pool(task: str, members: Sequence[RunRecord], results: Path) -> RunRecord:
    samples: list[Sample] = []
    verdicts: list[dict[str, Verdict]] = []
    for rec in members:
        s, v = read_samples_file(results / f"{rec.run_id}.json", rec)
        samples += s
        verdicts += v
    first = members[0]
    judge = first.judge
    info = JudgeInfo(
        judge.id, judge.provider, judge.model, judge.settings, judge.prompt_sha256, judge.approximation
    )
    names = {k for per in verdicts for k in per}
    supports: Mapping[str, bool] = {k: True for k in names}
    accounting: dict[str, Any] = {"pooled_from": [r.run_id for r in members]}
    limit = first.task.data.limit
    max_unusable = first.completeness.max_unusable if first.completeness else DEFAULT_MAX_UNUSABLE
    record, _ = record_run(
        task,
        samples,
        verdicts,
        supports,
        info,
        accounting,
        model=asdict(first.model),
        generation=first.generation,
        source={"pooled_from": [r.run_id for r in members]},
        results_dir=results,
        limit=limit,
        max_unusable=max_unusable,
    )
    return record
