"""Benchmarks by task name: how each turns responses into judge requests and rates.

Every benchmark folder (`mis_tasks/<bench>/`) holds the lmms-eval YAML + utils and a
`scoring.py` whose `BENCHMARK` object follows `Benchmark`. The judge step
(`mis_eval.pipeline`) only talks to this interface, so MIS, MM-SafetyBench, SIUO and
VLGuard share one judging, caching and record-writing path.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from judges.base import JudgeRequest, Verdict
from judges.rubric import Rubric
from mis_eval.core.record import Metric
from mis_eval.core.samples import Sample


@dataclass
class Scores:
    metrics: dict[str, Metric]
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    task: dict[str, Any] = field(default_factory=dict)  # extra run-record `task` fields (e.g. split, variant)


class Benchmark(Protocol):
    name: str  # "mis", "mm_safetybench", ...
    version: str  # bump when data handling, prompts or metrics change
    tasks: Sequence[str]  # lmms-eval task names scored by this benchmark

    def rubrics(self, task: str) -> Sequence[Rubric]: ...

    def docs(self, task: str, data_root: str | None = None) -> Mapping[str, dict[str, Any]]:
        """Validated records of a task by id (lmms-eval's sample logs do not carry the docs)."""
        ...

    def requests(self, sample: Sample) -> list[JudgeRequest]:
        """Judge requests for one sample (none when its generation failed)."""
        ...

    def score(
        self,
        task: str,
        samples: Sequence[Sample],
        verdicts: Sequence[Mapping[str, Verdict]],
        judge_supports: Mapping[str, bool],
    ) -> Scores:
        """Rates from per-sample verdicts ({rubric name: verdict}); unsupported rubrics -> missing."""
        ...


# benchmark name -> module holding BENCHMARK
_MODULES: dict[str, str] = {
    "mis": "mis_tasks.mis.scoring",
    "mm_safetybench": "mis_tasks.mm_safetybench.scoring",
    "siuo": "mis_tasks.siuo.scoring",
    "vlguard": "mis_tasks.vlguard.scoring",
}


def benchmarks() -> dict[str, Benchmark]:
    out = {}
    for name, mod in _MODULES.items():
        try:
            out[name] = importlib.import_module(mod).BENCHMARK
        except ModuleNotFoundError as e:
            if not (e.name and mod.startswith(e.name)):  # a benchmark not installed, not a broken import
                raise
    return out


def benchmark_for_task(task: str) -> Benchmark:
    for bench in benchmarks().values():
        if task in bench.tasks:
            return bench
    known = sorted(t for b in benchmarks().values() for t in b.tasks)
    raise ValueError(f"no judge step for task {task!r}; tasks with one: {', '.join(known)}")
