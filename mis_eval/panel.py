"""Several judges over the same samples: one record each, their agreement, and a majority.

The majority-vote record is a judge of its own (`panel(a+b)`): a sample without a strict
majority is an ERROR verdict, so disagreement is reported, never resolved toward safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from judges.agreement import agreement, majority_vote
from judges.base import Judge, JudgeInfo, Status, Verdict
from mis_eval.core.record import RunRecord, utc_now
from mis_eval.core.samples import Sample
from mis_eval.pipeline import DEFAULT_MAX_UNUSABLE, record_run
from mis_tasks.judging import judge_samples
from mis_tasks.registry import benchmark_for_task

NOT_GRADED = Verdict(Status.ERROR, error="not graded by this judge")


def panel_info(infos: Sequence[JudgeInfo]) -> JudgeInfo:
    return JudgeInfo(
        id="panel(" + "+".join(i.id for i in infos) + ")",
        provider="panel",
        model=",".join(str(i.model) for i in infos),
        settings={"members": [i.id for i in infos], "rule": "strict majority of all judges"},
        prompt_sha256={f"{i.id}:{k}": v for i in infos for k, v in i.prompt_sha256.items()},
        approximation="; ".join(f"{i.id}: {i.approximation}" for i in infos if i.approximation) or None,
    )


def judge_panel(
    task: str,
    samples: Sequence[Sample],
    judges: Sequence[Judge],
    *,
    model: Mapping[str, Any],
    generation: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    results_dir: Path | str | None = None,
    progress: bool = True,
    limit: int | float | None = None,
    max_unusable: float = DEFAULT_MAX_UNUSABLE,
    notes: Sequence[str] = (),
) -> list[RunRecord]:
    """A record per judge, plus (for two or more) the majority record carrying the agreement."""
    bench = benchmark_for_task(task)
    started = utc_now()
    write = partial(
        record_run,
        model=model,
        generation=generation,
        source=source,
        results_dir=results_dir,
        max_unusable=max_unusable,
        limit=limit,
        notes=notes,
    )
    records, graded, infos, all_supports = [], {}, [], []
    for judge in judges:
        verdicts, supports = judge_samples(bench, samples, judge, progress=progress)
        info = judge.info(bench.rubrics(task))
        records.append(write(task, samples, verdicts, supports, info, judge.accounting())[0])
        graded[info.id] = verdicts
        infos.append(info)
        all_supports.append(supports)
    if len(judges) < 2:
        return records
    keys = sorted({k for per_judge in graded.values() for per in per_judge for k in per})
    stats, majority = [], [dict[str, Verdict]() for _ in samples]
    for key in keys:
        by_judge = {name: [per.get(key, NOT_GRADED) for per in v] for name, v in graded.items()}
        stats += [p.to_dict() | {"rubric": key} for p in agreement(by_judge)]
        stats += [
            p.to_dict() | {"rubric": key, "with_perception": True}
            for p in agreement(by_judge, with_detail=True)
            if any(v.detail for vs in by_judge.values() for v in vs)
        ]
        for i in range(len(samples)):
            majority[i][key] = majority_vote(
                [vs[i] for vs in by_judge.values()], detail_required_for=("safe",)
            )
    supports = {k: all(s.get(k, True) for s in all_supports) for k in {k for s in all_supports for k in s}}
    accounting = {"members": [r.accounting for r in records]}
    record, _ = write(
        task, samples, majority, supports, panel_info(infos), accounting, started=started, agreement=stats
    )
    return [*records, record]
