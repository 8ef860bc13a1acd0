"""Benchmarks by task name: how each turns responses into judge requests and rates.

Every benchmark folder (`mis_tasks/<bench>/`) holds the lmms-eval YAML + utils and a
`scoring.py` whose `BENCHMARK` is a `Benchmark`; the folders are found, not listed. The judge
step (`mis_tasks.judging`) and the app's run record only talk to this interface, so MIS,
MM-SafetyBench, SIUO and VLGuard share one judging, caching and record-writing path.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from judges.base import JudgeRequest, Verdict
from judges.rubric import Rubric
from mis_eval.core.record import BreakdownRow, Metric
from mis_eval.core.samples import Sample, split_response
from mis_tasks.common import TaskDocs

Verdicts = Sequence[Mapping[str, Verdict]]  # per sample: {verdict key: verdict}
Supports = Mapping[str, bool]  # rubric name -> whether the judge can grade it


@dataclass
class Scores:
    metrics: dict[str, Metric]
    breakdown: list[BreakdownRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    task: dict[str, Any] = field(default_factory=dict)  # extra run-record `task` fields (e.g. split, variant)


@dataclass(frozen=True)
class AttributionDesign:
    """How a benchmark's attribution variants pair with its paper task (mis_eval.attribution).

    Item ids are the docs' `item_id` (else `id`): a variant with several samples per item (MIR's
    `single`, one per image position) counts an item unsafe when any of its samples is, and usable
    only when all of them are.
    """

    default: str  # the paper task's variant ("both" for MIS, "all" for MIR)
    variants: Mapping[str, str]  # variant -> what the model sees, in report order (default first)
    singles: tuple[str, ...]  # one-image variants: uplift = ASR(default) - max ASR(singles)
    reordered: str | None  # images reordered: order sensitivity against the default
    none: str | None  # no image: the text-only baseline ASR(none)
    verdict: str  # the verdict key of the per-sample files (the rubric name)
    rates: tuple[str, ...]  # rates per variant the judge can give ("ASR", "RSR", ...)
    judge_sees: str  # what the judge saw in every variant, in words
    parse_task: Callable[[str], tuple[str, str]]  # task -> (split, variant); ValueError otherwise
    paper_task: Callable[[str], str]  # split -> the paper task ("mis_hard")
    how_to_read: str  # the report's explanation of its numbers


@dataclass(frozen=True)
class Benchmark(abc.ABC):
    """What every benchmark states; subclasses add how they ask the judge and count the answers."""

    name: str  # "mis", "mm_safetybench", ...
    # Bump when data handling, prompts or metrics change. The one source: every task YAML's
    # metadata.version must agree (tests/test_benchmark_versions.py).
    version: str
    tasks: tuple[str, ...]  # lmms-eval task names scored by this benchmark
    load_docs: TaskDocs  # the benchmark's data.load_task_docs
    # Metrics computed from the responses alone (keyword rules): lmms-eval's hooks for these
    # never make a judge.
    unjudged_metrics: frozenset[str] = frozenset()
    # Run records pooled over several tasks' judged samples: {pooled task: member tasks}. The app
    # writes one (mis_eval.pooled) when the run records of every member, judged alike, are at hand
    # (MIR-SafetyBench: its overall rates, pooled over the nine relation tasks as statics.py does).
    pooled: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    attribution: AttributionDesign | None = None  # its attribution variants, where it has some

    def docs(self, task: str, data_root: str | None = None) -> Mapping[str, dict[str, Any]]:
        """Validated records of a task by id (lmms-eval's sample logs do not carry the docs)."""
        return self.load_docs(task, data_root)

    def sample(self, task: str, doc_id: int, doc: dict[str, Any], response: Any) -> Sample:
        """The Sample of one logged item's response (one text, or a failure marker)."""
        return Sample(task, doc_id, doc, *split_response(response if isinstance(response, str) else None))

    @abc.abstractmethod
    def rubrics(self, task: str) -> Sequence[Rubric]: ...

    @abc.abstractmethod
    def requests(self, sample: Sample) -> list[JudgeRequest]:
        """Judge requests for one sample (none when its generation failed)."""

    @abc.abstractmethod
    def score(self, task: str, samples: Sequence[Sample], verdicts: Verdicts, supports: Supports) -> Scores:
        """Rates from per-sample verdicts ({rubric name: verdict}); unsupported rubrics -> missing."""


def benchmarks() -> dict[str, Benchmark]:
    """Every benchmark folder's `BENCHMARK`: each subpackage of mis_tasks with a `scoring` module.

    Adding a benchmark is adding its folder (docs/adding-a-benchmark.md); a folder without
    `scoring.py` (the capability tasks, scored by lmms-eval itself) has no judge step.
    """
    import mis_tasks

    out: dict[str, Benchmark] = {}
    for folder in sorted(m.name for m in pkgutil.iter_modules(mis_tasks.__path__) if m.ispkg):
        module = f"mis_tasks.{folder}.scoring"
        if importlib.util.find_spec(module) is None:
            continue
        bench = importlib.import_module(module).BENCHMARK
        if bench.name in out:
            raise ValueError(f"benchmark name {bench.name!r} of {module} is already taken")
        out[bench.name] = bench
    return out


def benchmark_for_task(task: str) -> Benchmark:
    for bench in benchmarks().values():
        if task in bench.tasks:
            return bench
    known = sorted(t for b in benchmarks().values() for t in b.tasks)
    raise ValueError(f"no judge step for task {task!r}; tasks with one: {', '.join(known)}")
