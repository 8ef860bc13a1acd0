"""A sweep from plan to leaderboard: what to run, running it (here or on Ray), the state, the page.

    prepared = prepare(load_plan("plan.yaml"))    # validated plan, jobs, what is done and why
    results = run_local(prepared)                 # or ray_pool.run_ray(prepared, address)
    regenerate_leaderboard(prepared)

Each job is a generation phase (`mis-eval run --no-judge`: lmms-eval generates, and scores the
tasks it scores itself) and a judging phase (`mis-eval judge` on the job's logs, with the plan's
judges and the shared judge cache). A phase that fails marks its job failed, with the reason
and the log, and the sweep goes on with the next job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from mis_eval.sweep.plan import Plan
from mis_eval.sweep.runner import FAILED, INCOMPLETE, MIS_EVAL, OK, Outcome, Phase, run_phase
from mis_eval.sweep.state import SweepState
from mis_eval.sweep.status import (
    Assessor,
    DataProbe,
    Job,
    JobStatus,
    JudgeTarget,
    Layout,
    generation_signature,
    make_jobs,
    resolve_judges,
)
from mis_eval.sweep.tasks import expand

Say = Callable[[str], None]


@dataclass
class Prepared:
    plan: Plan
    layout: Layout
    jobs: list[Job]
    judges: list[JudgeTarget]
    probe: DataProbe
    state: SweepState
    assessor: Assessor
    statuses: list[JobStatus]
    cwd: Path = field(default_factory=Path.cwd)

    @property
    def to_run(self) -> list[JobStatus]:
        return [s for s in self.statuses if not s.done]


@dataclass
class JobResult:
    job: str
    status: str  # "done" (ran now), "already done", "failed", "incomplete"
    seconds: float = 0.0
    reason: str = ""
    log: str = ""
    devices: str | None = None  # CUDA_VISIBLE_DEVICES the generation phase saw


def prepare(
    plan: Plan,
    *,
    output: Path | None = None,
    only: Sequence[str] = (),
    strict: bool = True,
) -> Prepared:
    """Everything checked before anything runs: the plan's tasks, judges, and each job's status.

    `only`: job-id globs (`qwen*/mis`); `strict=False` (dry run) describes judges it cannot build.
    """
    layout = Layout((output or plan.output).resolve())
    jobs = make_jobs(plan, expand(plan))
    if only:
        jobs = [j for j in jobs if any(fnmatchcase(j.id, pattern) for pattern in only)]
        if not jobs:
            raise ValueError(f"--only {' '.join(only)}: no job of {plan.path} matches")
    judges = resolve_judges(plan, strict=strict)
    probe = DataProbe(plan.env)
    state = SweepState(layout.state)
    assessor = Assessor(plan, layout, judges, probe, state)
    return Prepared(plan, layout, jobs, judges, probe, state, assessor, [assessor.assess(j) for j in jobs])


def reassess(p: Prepared) -> Prepared:
    """What is done, read again (once this sweep holds the output folder's lock)."""
    state = SweepState(p.layout.state)
    assessor = Assessor(p.plan, p.layout, p.judges, p.probe, state)
    return replace(p, state=state, assessor=assessor, statuses=[assessor.assess(j) for j in p.jobs])


def generation_phase(p: Prepared, status: JobStatus) -> Phase:
    job, m, limits = status.job, status.job.model, p.plan.limits
    from model_adapters.registry import takes_response_cache

    cache = p.layout.cache(job) if m.cache and takes_response_cache(m.model) else None
    args = [MIS_EVAL, "run", "--no-judge", "--model", m.model]
    if model_args := m.args_text(cache):
        args += ["--model_args", model_args]
    args += ["--tasks", ",".join(status.missing), "--output_path", str(p.layout.lmms(job))]
    if limits.limit is not None:
        args += ["--limit", f"{limits.limit:g}"]
    if m.batch_size is not None:
        args += ["--batch_size", m.batch_size]
    if m.gen_kwargs:
        args += ["--gen_kwargs", ",".join(f"{k}={v}" for k, v in m.gen_kwargs)]
    args += list(m.lmms_eval_args)
    return Phase(
        job.id,
        "generate",
        args,
        str(p.layout.log(job, "generate")),
        str(p.cwd),
        dict(p.plan.env),
        limits.timeout_s,
    )


def judge_phase(p: Prepared, status: JobStatus) -> Phase | None:
    tasks = [t for t in status.missing if t in status.job.judged]
    if not tasks:
        return None
    args = [MIS_EVAL, "judge", str(p.layout.lmms(status.job)), "--tasks", ",".join(tasks)]
    args += ["--results-dir", str(p.layout.results), "--no-progress"]
    args += ["--max-unusable", f"{p.plan.limits.max_unusable:g}"]
    for spec in p.plan.judges:
        args += ["--judge", spec]
    return Phase(
        status.job.id,
        "judge",
        args,
        str(p.layout.log(status.job, "judge")),
        str(p.cwd),
        dict(p.plan.env),
        p.plan.limits.timeout_s,
    )


def record_start(p: Prepared, phase: Phase) -> None:
    p.state.update(phase.job, status="running", phase=phase.name, log=phase.log, reason=None)


def record_generation(p: Prepared, status: JobStatus, out: Outcome) -> JobResult | None:
    """The generation phase's outcome in the state; a JobResult when it ends the job (failed)."""
    fields: dict[str, Any] = {"generate": out.to_dict(), "log": out.log}
    if out.status == OK:
        sig = generation_signature(status.job, status.missing, p.probe, p.plan.limits.limit)
        p.state.update(status.job.id, generated={"tasks": list(status.missing), "signature": sig}, **fields)
        return None
    p.state.update(
        status.job.id, status="failed", phase="generate", reason=out.reason, generated=None, **fields
    )
    return JobResult(status.job.id, FAILED, out.seconds, out.reason or "", out.log, out.cuda_visible_devices)


def record_failure(p: Prepared, status: JobStatus, reason: str, log: str = "") -> JobResult:
    p.state.update(status.job.id, status="failed", reason=reason, log=log or None)
    return JobResult(status.job.id, FAILED, 0.0, reason, log)


def judge_and_record(p: Prepared, status: JobStatus, generated: Outcome | None) -> JobResult:
    """Judge a generated job (when it has judged tasks) and record how the job ended."""
    seconds = generated.seconds if generated else 0.0
    devices = generated.cuda_visible_devices if generated else None
    log = generated.log if generated else ""
    phase = judge_phase(p, status)
    if phase is not None:
        record_start(p, phase)
        out = run_phase(phase)
        seconds, log = seconds + out.seconds, out.log
        p.state.update(status.job.id, judge=out.to_dict())
        if out.status != OK:
            end = "incomplete" if out.status == INCOMPLETE else FAILED
            p.state.update(status.job.id, status=end, phase="judge", reason=out.reason, log=out.log)
            return JobResult(status.job.id, end, seconds, out.reason or "", out.log, devices)
    # done means the results folder says so (the same test as the next sweep's)
    check = Assessor(p.plan, p.layout, p.judges, p.probe, p.state).assess(status.job)
    if not check.done:
        reason = f"ran, but its results do not show it done: {check.why}"
        p.state.update(status.job.id, status=FAILED, phase=None, reason=reason, log=log or None)
        return JobResult(status.job.id, FAILED, seconds, reason, log, devices)
    p.state.update(status.job.id, status="done", phase=None, reason=None, log=log or None)
    return JobResult(status.job.id, "done", seconds, "", log, devices)


def run_local(p: Prepared, say: Say | None = None) -> list[JobResult]:
    """Every job to run, one after another on this machine (each sees this machine's GPUs)."""
    from tqdm import tqdm

    results: list[JobResult] = []
    todo = p.to_run
    with tqdm(total=len(todo), desc="sweep", unit="job", disable=not todo) as bar:
        tell = say or bar.write
        for status in todo:
            tell(f"{status.job.id}: {status.why}")
            try:
                result = _run_one(p, status, tell)
            except KeyboardInterrupt:
                p.state.update(status.job.id, status="failed", reason="interrupted")
                raise
            tell(f"{status.job.id}: {result.status} in {result.seconds:.0f} s")
            results.append(result)
            bar.update(1)
    return results


def _run_one(p: Prepared, status: JobStatus, tell: Say) -> JobResult:
    result = None
    for attempt in range(p.plan.limits.retries + 1):
        generated = None
        if not status.generated:
            phase = generation_phase(p, status)
            record_start(p, phase)
            generated = run_phase(phase)
            result = record_generation(p, status, generated)
            if result is not None:
                tell(f"{status.job.id}: FAILED (try {attempt + 1}): {result.reason} (log {result.log})")
                continue
        return judge_and_record(p, status, generated)
    assert result is not None
    return result


def already_done(p: Prepared) -> list[JobResult]:
    return [JobResult(s.job.id, "already done", reason=s.why) for s in p.statuses if s.done]


def regenerate_leaderboard(p: Prepared) -> Any:
    """`mis-eval leaderboard` over the sweep's results, models shown under their plan ids."""
    from mis_eval.leaderboard import Options, build
    from mis_eval.records import find_runs
    from mis_eval.sweep.status import same_args

    aliases = {m.recorded_name(): m.id for m in p.plan.models}
    # bad files are skipped here; the leaderboard build lists them
    found = find_runs([p.layout.results], []) if p.layout.results.is_dir() else []
    for _, rec in found:
        for m in p.plan.models:
            if rec.model.adapter == m.model and same_args(rec.model.args, m):
                aliases[rec.model.name] = m.id
    p.layout.results.mkdir(parents=True, exist_ok=True)
    return build(
        Options(
            results_dir=p.layout.results,
            out_dir=p.layout.leaderboard,
            aliases=aliases,
            include_limited=p.plan.limits.limit is not None,
        )
    )
