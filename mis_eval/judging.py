"""Judge lmms-eval `--log_samples` output into run records (`mis-eval judge`, `run`, the demo, selftest).

Library code: it returns the records and prints nothing, so the commands decide what to say.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from judges.base import Judge
from judges.registry import default_judge_name, make_judge
from mis_eval.core.record import RunRecord
from mis_eval.core.samples import Sample
from mis_eval.lmms_io import LoggedTask, find_logged_tasks, read_samples
from mis_eval.panel import judge_panel
from mis_eval.pipeline import DEFAULT_MAX_UNUSABLE
from mis_tasks.registry import benchmark_for_task, benchmarks


def split_spec(spec: str) -> tuple[str, str | None]:
    """`NAME[:OPTIONS]` (a `--judge` value) -> (name, options or None)."""
    name, _, options = spec.partition(":")
    return name.strip(), options or None


def make_judges(specs: Sequence[str] | None) -> list[Judge]:
    """A judge per spec (default: `default_judge_name()`), built before any work: bad options fail fast."""
    return [
        make_judge(name, options or "") for name, options in map(split_spec, specs or [default_judge_name()])
    ]


def judge_logged(
    path: Path | Sequence[Path],
    judges: Sequence[Judge],
    *,
    results_dir: Path,
    data_root: str | Mapping[str, str] | None = None,
    tasks: Sequence[str] | None = None,
    progress: bool = True,
    max_unusable: float = DEFAULT_MAX_UNUSABLE,
    duplicates: str = "error",
) -> Iterator[RunRecord]:
    """Each written run record, task by task, for the newest log of every task of ours under `path`
    (a folder or samples file, or several).

    `data_root`: one root for every benchmark, or {benchmark name: root} (the demo's two samples).

    Every log is read and checked (task, records, duplicates) before the first judge call, so a bad
    log stops the command before anything is paid for.
    """
    known = {t for b in benchmarks().values() for t in b.tasks}
    done: set[str] = set()
    ready: list[tuple[LoggedTask, list[Sample]]] = []
    for where in [path] if isinstance(path, Path) else path:
        for logged in find_logged_tasks(where):
            if logged.task in done or logged.task not in known or (tasks and logged.task not in tasks):
                continue  # older duplicate, a task scored by lmms-eval itself, or filtered out
            done.add(logged.task)
            bench = benchmark_for_task(logged.task)
            root = data_root.get(bench.name) if isinstance(data_root, Mapping) else data_root
            ready.append((logged, read_samples(logged, bench.docs(logged.task, root), duplicates=duplicates)))
    for logged, samples in ready:
        source: dict[str, Any] = {
            "lmms_eval_samples": str(logged.samples_path),
            "lmms_eval_results": str(logged.results_path),
        }
        if logged.duplicates:
            source["duplicates"] = logged.duplicates
        yield from judge_panel(
            logged.task,
            samples,
            judges,
            model=logged.model or {"name": "unknown"},
            generation=logged.generation,
            source=source,
            results_dir=results_dir,
            progress=progress,
            limit=logged.limit,
            max_unusable=max_unusable,
            notes=logged.notes,
        )
