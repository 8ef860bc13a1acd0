"""Run a selftest suite: lmms-eval generates (in this process, on fixed subsets), then the judge step.

lmms-eval's CLI cannot cut a task down to a stratified subset, so the tasks are loaded here
through its TaskManager (with mis-eval's task folder included), their evaluation splits are
cut in place, and the Task objects go to `lmms_eval.evaluator.simple_evaluate`. Outputs are
saved exactly as `lmms-eval --output_path ... --log_samples` saves them, so the same
`mis-eval judge` code judges them and the leaderboard readers read them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mis_eval.attribution.load import paper_task_of
from mis_eval.leaderboard.entries import Entry, Key, signature
from mis_eval.leaderboard.sources import load_results
from mis_eval.leaderboard.spec import Spec
from mis_eval.records import find_runs
from mis_eval.selftest.config import TaskPlan
from mis_eval.selftest.subset import subset_task


class SuiteError(RuntimeError):
    """The suite could not be run (its message says which task and why; no traceback needed)."""


@dataclass
class SuiteRun:
    entries: list[Entry] = field(default_factory=list)
    subsets: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # optional tasks skipped, and why
    problems: list[str] = field(default_factory=list)  # "task: why" for tasks that gave no numbers
    runs: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)  # judged run records (absolute), for the flip report


@contextmanager
def judge_env(name: str, options: str | None) -> Iterator[None]:
    """lmms-eval's aggregation judges MIS-style tasks itself: make it use the selftest's judge (and cache)."""
    from judges.registry import ENV_JUDGE, ENV_JUDGE_ARGS

    old = {k: os.environ.get(k) for k in (ENV_JUDGE, ENV_JUDGE_ARGS)}
    os.environ[ENV_JUDGE], os.environ[ENV_JUDGE_ARGS] = name, options or ""
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _leaves(tree: Mapping[Any, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _leaves(value)
        elif value is not None:
            yield str(key), value


def load_tasks(
    plans: Sequence[TaskPlan], model: str, task_type: str, seed: int, run: SuiteRun
) -> tuple[Any, list[Any]]:
    """Task objects cut to their subsets; optional tasks that are missing or fail to load are noted."""
    from lmms_eval.tasks import TaskManager

    from mis_tasks.discovery import TASKS_DIR

    tm = TaskManager("ERROR", include_path=TASKS_DIR, model_name=model)
    objects = []
    for plan in plans:
        if plan.task not in tm.all_tasks:
            if plan.optional:
                run.notes.append(f"{plan.task}: not installed, skipped (optional)")
                continue
            raise ValueError(f"task {plan.task!r} is not registered with lmms-eval (see `mis-eval tasks`)")
        try:
            loaded = list(_leaves(tm.load_task_or_group([plan.task], task_type)))
        except Exception as e:  # data missing, hub unreachable, ...: say which task and why
            if plan.optional:
                run.notes.append(
                    f"{plan.task}: could not be loaded, skipped (optional): {type(e).__name__}: {e}"
                )
                continue
            raise SuiteError(
                f"{plan.task}: could not load its data ({type(e).__name__}: {e}); "
                "make it optional or remove it from the suite"
            ) from e
        for name, task_obj in loaded:
            # variants draw the paper task's items, so attribution can pair them
            paper = paper_task_of(name)
            kept, total, how = subset_task(task_obj, plan.n, plan.stratify, seed=seed, name=paper)
            run.subsets[name] = f"{kept} of {total} documents" + (
                f", {how}, seed {seed}" if kept < total else ""
            )
            objects.append(task_obj)
    return tm, objects


def generate(
    model: str,
    model_args: str,
    plans: Sequence[TaskPlan],
    *,
    seed: int,
    out: Path,
    judge: tuple[str, str | None],
    batch_size: int = 1,
    device: str | None = None,
    run: SuiteRun,
) -> Path:
    """lmms-eval over the subsets; writes <out>/.../<time>_results.json and *_samples_<task>.jsonl."""
    from lmms_eval import evaluator, models
    from lmms_eval.loggers import EvaluationTracker
    from lmms_eval.utils import get_datetime_str

    lm = models.get_model(model).create_from_arg_string(
        model_args, {"batch_size": batch_size, "max_batch_size": None, "device": device}
    )
    tm, tasks = load_tasks(plans, model, "simple" if getattr(lm, "is_simple", True) else "chat", seed, run)
    if not tasks:
        raise ValueError("the suite has no task to run")
    tracker = EvaluationTracker(output_path=str(out))
    stamp = get_datetime_str()
    with judge_env(*judge):
        results = evaluator.simple_evaluate(
            model=lm,
            model_args=model_args,
            tasks=tasks,
            task_manager=tm,
            batch_size=batch_size,
            device=device,
            log_samples=True,
            evaluation_tracker=tracker,
            datetime_str=stamp,
            verbosity="ERROR",
        )
    if results is None:
        raise SuiteError("lmms-eval returned no results")
    results["config"]["model"] = model  # it records the class name when handed a model object
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples, datetime_str=stamp)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    return out


def run_suite(
    model: str,
    model_args: str,
    plans: Sequence[TaskPlan],
    *,
    seed: int,
    judge: str,
    work_dir: Path,
    spec: Spec,
    display_name: str,
    batch_size: int = 1,
    device: str | None = None,
    progress: bool = True,
) -> SuiteRun:
    """Generate, judge, and read back every number of the suite as leaderboard entries."""
    from mis_eval.judging import judge_logged, make_judges, split_spec
    from mis_eval.pooled import pooled_records
    from mis_tasks.registry import benchmarks

    run = SuiteRun()
    lmms_dir, records_dir = work_dir / "lmms-eval", work_dir / "runs"
    name, options = split_spec(judge)
    generate(
        model,
        model_args,
        plans,
        seed=seed,
        out=lmms_dir,
        judge=(name, options),
        batch_size=batch_size,
        device=device,
        run=run,
    )
    judged = {t for b in benchmarks().values() for t in b.tasks} & set(run.subsets)
    if judged:
        judges = make_judges([judge])
        records = list(
            judge_logged(lmms_dir, judges, results_dir=records_dir, tasks=sorted(judged), progress=progress)
        )
        pooled_records(records, records_dir)  # MIR-SafetyBench over its relation tasks: mir_safetybench/ASR
    if records_dir.is_dir():
        run.records = [str(p.resolve()) for p, _ in find_runs([records_dir])]
    for folder in (records_dir, lmms_dir):
        if folder.is_dir():
            loaded = load_results(folder, spec)
            run.entries += loaded.entries
            run.problems += loaded.problems
            run.runs += sorted({str(folder / e.source) for e in loaded.entries})
    for e in run.entries:
        e.model = display_name  # one row: lmms-eval and the judge step may spell the model differently
        if e.task in run.subsets:  # a subset is its own data version: only the same subset compares
            e.data = Key(
                signature([e.data.sig, run.subsets[e.task]]),
                f"{e.data.label} · {run.subsets[e.task]}",
                e.data.detail,
                e.data.family,
            )
    if records_dir.is_dir():  # attribution variants in the suite: uplift, order sensitivity, ASR_none
        run.entries += attribution_entries(records_dir, display_name)
    got = {e.task for e in run.entries}
    run.problems += [f"{t}: ran but produced no numbers" for t in sorted(run.subsets) if t not in got]
    return run


def attribution_entries(records_dir: Path, display_name: str) -> list[Entry]:
    """`mis_<split>_attribution/{uplift,order_sensitivity,ASR_none}` for thresholds and baselines."""
    from mis_eval.attribution import analyse_results, selftest_entries

    entries = selftest_entries(analyse_results([records_dir]))
    for e in entries:
        e.model = display_name
    return entries
