"""What a sweep has left to do: its jobs, which are done already (read from the run records), and
what judging the rest will cost.

A job (model × benchmark group) is done when every judged task of the group has, for every judge
of the plan (and their panel), a complete run record of the same model (adapter and model args),
the same data version (fingerprint, where the data is on this machine), the same judge (id and
prompt hashes) and the same `--limit`; and every task lmms-eval scores itself has an lmms-eval
result of the same model in the job's folder. Anything else is said, task by task, as why the
job runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mis_eval.core.files import UnreadableFile, read_json
from mis_eval.core.record import RunRecord
from mis_eval.sweep.plan import ModelSpec, Plan, PlanError, split_args
from mis_eval.sweep.state import SweepState
from mis_eval.sweep.tasks import Leaf

# judge-cost estimate when no earlier run of the judge measured it (README "Sweeps")
IMAGE_TOKENS = 800  # per image, as judges/openai_judge.py budgets a request for its token limiter
ASSUMED_RESPONSE_TOKENS = 256  # the judged answer, unknown before generation
PLACEHOLDER_RESPONSE = "(response)"
NOT_RECORDED = " yet"  # ends the why of a task nothing was recorded for


@dataclass(frozen=True)
class Job:
    model: ModelSpec
    group: str
    leaves: tuple[Leaf, ...]

    @property
    def id(self) -> str:
        return f"{self.model.id}/{self.group}"

    @property
    def slug(self) -> str:
        return f"{self.model.id}__{self.group}"

    @property
    def judged(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.leaves if t.judged)


@dataclass(frozen=True)
class Layout:
    """Where a sweep keeps everything, under the plan's output folder."""

    root: Path

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "sweep_state.json"

    @property
    def lock(self) -> Path:
        return self.root / ".sweep.lock"

    @property
    def leaderboard(self) -> Path:
        return self.root / "leaderboard"

    def lmms(self, job: Job) -> Path:
        return self.results / "lmms-eval" / job.slug

    def cache(self, job: Job) -> Path:
        return self.root / "cache" / f"{job.slug}.jsonl"

    def log(self, job: Job, phase: str) -> Path:
        return self.logs / f"{job.slug}.{phase}.log"


def make_jobs(plan: Plan, leaves: Mapping[str, tuple[Leaf, ...]]) -> list[Job]:
    return [Job(m, g, leaves[g]) for m in plan.models for g in plan.groups_of(m)]


# -- judges -----------------------------------------------------------------------------------


@dataclass
class JudgeTarget:
    """A plan judge as records name it: its id (None: not pinned, matched by `prefix`), its prices."""

    spec: str
    id: str | None
    prefix: str
    judge: Any = None  # the built Judge (prompt hashes, supported rubrics), when it could be built
    price: tuple[float, float] | None = None  # USD per 1M (input, output) tokens
    calls: bool = True  # makes judge calls (the keyword judge makes none)
    hardened: bool = False
    problem: str | None = None  # why it could not be built (dry run without its API key)

    def matches(self, judge_id: str) -> bool:
        return judge_id == self.id if self.id is not None else judge_id.startswith(self.prefix)


def resolve_judges(plan: Plan, *, strict: bool) -> list[JudgeTarget]:
    """Each plan judge, built (bad options fail here); `strict=False` (dry run) lets one that needs
    a missing API key be described from its name and options instead."""
    import asyncio

    from judges.accounting import price_for
    from judges.engine import HARDENED_SUFFIX, BatchJudge
    from judges.registry import judge_class, make_judge, parse_options

    out = []
    for i, spec in enumerate(plan.judges):
        name, _, text = spec.partition(":")
        options = parse_options(text)
        hardened = bool(options.get("hardened") or options.get("delimit"))
        cls = judge_class(name)
        try:
            judge = make_judge(name, options)
        except (ValueError, RuntimeError) as e:
            if strict:
                raise PlanError(f"{plan.path}: judges[{i}] ({spec}): {e}") from None
            model = options.get("model") or getattr(cls, "default_model", None)
            override = (
                (float(options["price_in"]), float(options["price_out"]))
                if "price_in" in options and "price_out" in options
                else None
            )
            provider = getattr(cls, "provider", "offline")
            out.append(
                JudgeTarget(
                    spec,
                    f"{name}:{model}{HARDENED_SUFFIX if hardened else ''}" if model else None,
                    f"{name}:",
                    price=price_for(str(model), override) if provider == "openai" or override else None,
                    calls=issubclass(cls, BatchJudge),
                    hardened=hardened,
                    problem=str(e),
                )
            )
            continue
        info = judge.info(())
        pinned = info.model is not None or not isinstance(judge, BatchJudge)
        acct = getattr(judge, "acct", None)
        out.append(
            JudgeTarget(
                spec,
                info.id if pinned else None,
                f"{name}:",
                judge=judge,
                price=getattr(acct, "price", None),
                calls=isinstance(judge, BatchJudge),
                hardened=hardened,
            )
        )
        asyncio.run(judge.aclose())  # its cache connection; judging happens in the job's own process
    return out


# -- data -------------------------------------------------------------------------------------


@dataclass
class TaskData:
    """A judged task's data as it is now on this machine (docs None: not available here)."""

    docs: list[dict[str, Any]] | None = None
    fingerprint: str | None = None
    problem: str | None = None


@contextmanager
def _local_only(env: Mapping[str, str]) -> Iterator[None]:
    """The plan's environment (data roots), with the Hugging Face hub offline: a look at the data
    never downloads it."""
    names = [*env, "HF_HUB_OFFLINE"]
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(env)
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants: Any = sys.modules.get("huggingface_hub.constants")  # read when the hub module loaded
    was = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = was
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class DataProbe:
    """Loads each judged task's records once (validated, as a job would), where they are local."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self._memo: dict[str, TaskData] = {}

    def __call__(self, task: str) -> TaskData:
        if task not in self._memo:
            from mis_tasks.registry import benchmark_for_task

            try:
                with _local_only(self.env):
                    docs = list(benchmark_for_task(task).docs(task).values())
            except Exception as e:  # missing data root, hub offline, bad data: the run would say more
                first = (str(e).splitlines() or [""])[0]
                short = first if len(first) <= 240 else first[:240] + "…"
                self._memo[task] = TaskData(problem=f"{type(e).__name__}: {short}")
            else:
                prints = sorted({str(d["data_fingerprint"]) for d in docs if d.get("data_fingerprint")})
                self._memo[task] = TaskData(docs, ",".join(prints) or None)
        return self._memo[task]


# -- what is done -----------------------------------------------------------------------------


def same_args(recorded: str, model: ModelSpec) -> bool:
    """The recorded --model_args are the plan's (the per-job `cache=` path aside)."""
    parts = [p for p in split_args(recorded or "") if not p.startswith("cache=")]
    return sorted(parts) == sorted(split_args(model.args_text()))


@dataclass
class JobStatus:
    job: Job
    done: bool
    why: str
    missing: tuple[str, ...] = ()  # leaf tasks to (re)run
    generated: bool = False  # their generation finished in an earlier sweep: only judging is left
    records: list[str] = field(default_factory=list)  # run records that make it done


def _limit_matches(recorded: Any, limit: Any) -> bool:
    if recorded == limit:
        return True
    try:  # a recorded limit that is no number (a tampered file) matches nothing
        return recorded is not None and limit is not None and float(recorded) == float(limit)
    except (TypeError, ValueError):
        return False


def _lmms_done(layout: Layout, job: Job, task: str, limit: Any) -> bool:
    folder = layout.lmms(job)
    for path in sorted(folder.rglob("*_results.json"), reverse=True) if folder.is_dir() else []:
        try:
            data = read_json(path)
        except UnreadableFile:
            continue
        if not isinstance(data, dict):
            continue
        config = data.get("config") or {}
        if not isinstance(config, dict):
            continue
        if (
            config.get("model") == job.model.model
            and same_args(str(config.get("model_args") or ""), job.model)
            and task in (data.get("results") or {})
            and _limit_matches(config.get("limit"), limit)
        ):
            return True
    return False


def generation_signature(job: Job, tasks: Sequence[str], probe: DataProbe, limit: Any) -> str:
    """What the answers of these tasks depend on: a changed plan or data means generating again."""
    m = job.model
    ident = {
        "model": m.model,
        "args": sorted(split_args(m.args_text())),
        "gen_kwargs": list(m.gen_kwargs),
        "lmms_eval_args": list(m.lmms_eval_args),
        "limit": limit,
        "data": {t: probe(t).fingerprint for t in tasks if t in job.judged},
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _has_samples(layout: Layout, job: Job, task: str) -> bool:
    folder = layout.lmms(job)
    return folder.is_dir() and any(folder.rglob(f"*_samples_{task}.jsonl"))


class Assessor:
    """Decides, job by job, what is done and what runs (and why), from the results folder."""

    def __init__(
        self, plan: Plan, layout: Layout, judges: Sequence[JudgeTarget], probe: DataProbe, state: SweepState
    ) -> None:
        from mis_eval.records import find_runs

        self.plan, self.layout, self.judges, self.probe, self.state = plan, layout, judges, probe, state
        # a broken file (a record cut short by a killed job) is named and skipped, never fatal
        self.problems: list[str] = []
        runs = find_runs([layout.results], self.problems) if layout.results.is_dir() else []
        for problem in self.problems:
            print(f"warning: not used: {problem}", file=sys.stderr)
        self.by_task: dict[str, list[tuple[Path, RunRecord]]] = {}
        for path, rec in runs:
            self.by_task.setdefault(rec.task.name, []).append((path, rec))

    def _expected_prompts(self, target: JudgeTarget, task: str) -> dict[str, str] | None:
        if target.judge is None:
            return None
        from mis_tasks.registry import benchmark_for_task

        return dict(target.judge.info(benchmark_for_task(task).rubrics(task)).prompt_sha256)

    def _judged_problem(self, job: Job, task: str, out: list[str]) -> str | None:
        """Why `task` of `job` is not done, or None (then the records that make it done go to `out`)."""
        limit = self.plan.limits.limit
        data = self.probe(task)
        ids: list[tuple[str, Callable[[str], bool]]] = [(t.spec, t.matches) for t in self.judges]
        if len(self.judges) > 1 and all(t.id for t in self.judges):
            panel = "panel(" + "+".join(str(t.id) for t in self.judges) + ")"
            ids.append(("their panel", lambda judge_id: judge_id == panel))
        for label, matches in ids:
            found = [
                (path, rec)
                for path, rec in self.by_task.get(task, [])
                if rec.model.adapter == job.model.model
                and same_args(rec.model.args, job.model)
                and matches(rec.judge.id)
                and _limit_matches(rec.task.data.limit, limit)
            ]
            if not found:
                return f"{task}: no run record by {label}{NOT_RECORDED}"
            path, rec = max(found, key=lambda pr: pr[1].finished_at)
            if not rec.complete:
                reason = rec.completeness.reason if rec.completeness else ""
                return f"{task}: newest record by {label} is incomplete ({reason})"
            if data.fingerprint and rec.task.data.fingerprint != data.fingerprint:
                return (
                    f"{task}: the data changed since its record "
                    f"({str(rec.task.data.fingerprint)[:8]} -> {data.fingerprint[:8]})"
                )
            target = next((t for t in self.judges if t.spec == label), None)
            expected = self._expected_prompts(target, task) if target is not None else None
            if expected is not None and dict(rec.judge.prompt_sha256) != expected:
                return f"{task}: the judge's prompt changed since its record"
            out.append(str(path))
        return None

    def assess(self, job: Job) -> JobStatus:
        problems: dict[str, str] = {}
        records: list[str] = []
        for leaf in job.leaves:
            if leaf.judged:
                problem = self._judged_problem(job, leaf.name, records)
            elif not _lmms_done(self.layout, job, leaf.name, self.plan.limits.limit):
                problem = f"{leaf.name}: no lmms-eval result{NOT_RECORDED}"
            else:
                problem = None
            if problem:
                problems[leaf.name] = problem
        if not problems:
            return JobStatus(job, True, f"{len(job.leaves)} task(s) recorded", records=records)
        missing = tuple(problems)
        entry = self.state.jobs.get(job.id, {})
        generated = entry.get("generated") or {}
        only_judging = (
            set(missing) <= set(job.judged)
            and set(missing) <= set(generated.get("tasks", ()))
            and generated.get("signature")
            == generation_signature(job, generated.get("tasks", ()), self.probe, self.plan.limits.limit)
            and all(_has_samples(self.layout, job, t) for t in missing)
        )
        never = all(p.endswith(NOT_RECORDED) for p in problems.values()) and len(problems) == len(job.leaves)
        why = (
            "nothing recorded yet"
            if never
            else "; ".join(list(problems.values())[:2])
            + (f"; +{len(problems) - 2} more" if len(problems) > 2 else "")
        )
        if entry.get("status") == "failed":
            why = f"failed last time: {entry.get('reason')} (log {entry.get('log')}); {why}"
        if only_judging:
            why = f"generated, judging left: {why}"
        return JobStatus(job, False, why, missing, only_judging)


# -- what judging will cost -------------------------------------------------------------------


@dataclass
class JudgeEstimate:
    spec: str
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = 0.0
    measured: bool = False  # tokens per call from earlier runs of this judge (else the README's rule)
    unknown: set[str] = field(default_factory=set)  # tasks whose data is not on this machine


def limited(n: int, limit: Any) -> int:
    """How many records lmms-eval --limit runs: a count, or a fraction of them (rounded up)."""
    if limit is None:
        return n
    return min(n, int(limit)) if float(limit) >= 1 else math.ceil(n * float(limit))


def _measured(assessor: Assessor, target: JudgeTarget, benchmark: str) -> tuple[float, float] | None:
    """Mean (input, output) tokens per call of this judge on this benchmark in earlier records."""
    calls = tokens_in = tokens_out = 0
    for runs in assessor.by_task.values():
        for _, rec in runs:
            acct = rec.accounting
            if rec.task.benchmark == benchmark and target.matches(rec.judge.id) and acct.get("calls"):
                try:
                    c, i, o = (int(acct.get(k) or 0) for k in ("calls", "prompt_tokens", "completion_tokens"))
                except (TypeError, ValueError):
                    continue  # counts that are no numbers (a tampered record): not a measurement
                calls, tokens_in, tokens_out = calls + c, tokens_in + i, tokens_out + o
    return (tokens_in / calls, tokens_out / calls) if calls and tokens_in else None


def estimate(assessor: Assessor, statuses: Sequence[JobStatus]) -> list[JudgeEstimate]:
    """Judge calls (at most: cached replies cost nothing) and their cost for the jobs that run."""
    from judges.prompting import render_prompt
    from mis_eval.core.samples import Sample
    from mis_tasks.registry import benchmark_for_task

    limit = assessor.plan.limits.limit
    out = [JudgeEstimate(t.spec) for t in assessor.judges]
    requests: dict[str, list[Any]] = {}
    for status in statuses:
        for task in (t for t in status.missing if t in status.job.judged):
            data = assessor.probe(task)
            if data.docs is None:
                for est in out:
                    est.unknown.add(task)
                continue
            bench = benchmark_for_task(task)
            if task not in requests:
                docs = data.docs[: limited(len(data.docs), limit)]
                requests[task] = [
                    r
                    for i, d in enumerate(docs)
                    for r in bench.requests(Sample(task, i, d, PLACEHOLDER_RESPONSE))
                ]
            for target, est in zip(assessor.judges, out, strict=True):
                if not target.calls:
                    continue
                mine = [r for r in requests[task] if target.judge is None or target.judge.supports(r.rubric)]
                per_call = _measured(assessor, target, bench.name)
                est.calls += len(mine)
                if per_call is not None:
                    est.measured = True
                    est.tokens_in += round(per_call[0] * len(mine))
                    est.tokens_out += round(per_call[1] * len(mine))
                else:
                    est.tokens_in += sum(
                        len(render_prompt(r, delimit_untrusted=target.hardened)) // 4
                        + IMAGE_TOKENS * len(r.images)
                        + ASSUMED_RESPONSE_TOKENS
                        for r in mine
                    )
                    est.tokens_out += sum(r.rubric.max_tokens for r in mine)
    for target, est in zip(assessor.judges, out, strict=True):
        if not target.calls:
            est.cost_usd = 0.0
        elif target.price is None:
            est.cost_usd = None
        else:
            est.cost_usd = (est.tokens_in * target.price[0] + est.tokens_out * target.price[1]) / 1e6
    return out
