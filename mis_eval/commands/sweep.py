"""`mis-eval sweep PLAN`: every model × benchmark group of a plan that is not done yet, generated,
judged, then the leaderboard; on this machine one job after another, or on Ray with `--ray`.

Kept light at start-up: the plan reader, Ray, pandas and the rest are imported when it runs.
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mis_eval.sweep.execute import JobResult, Prepared
    from mis_eval.sweep.status import JudgeEstimate

HELP = "run a plan of models × benchmarks (only what is missing; here or on Ray), then the leaderboard"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan", type=Path, help="the sweep plan (YAML; README 'Sweeps')")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the jobs (done / to run / why) and the judge calls and cost of the rest; run nothing",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run the generation jobs as Ray tasks: without ADDRESS on a Ray cluster of this machine "
        "(or $RAY_ADDRESS's), 'auto' on the cluster this node belongs to, or host:port / ray://host:10001",
    )
    p.add_argument("--output", type=Path, help="output folder (default: the plan's `output`)")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="only the jobs whose id (MODEL/GROUP) matches, e.g. 'qwen*/mis'; repeatable",
    )


def _frame_text(rows: list[dict[str, Any]]) -> str:
    import pandas as pd

    from mis_eval.display import neutralise_bidi

    frame = pd.DataFrame(rows).map(lambda v: neutralise_bidi(v) if isinstance(v, str) else v)
    for c in frame.columns:  # text columns read better left-aligned
        if not pd.api.types.is_numeric_dtype(frame[c]):
            frame[c] = frame[c].astype(str).str.ljust(max(len(c), frame[c].astype(str).str.len().max()))
    with pd.option_context("display.max_colwidth", None, "display.width", None):
        return str(frame.to_string(index=False, justify="left"))


def job_table(p: Prepared) -> str:
    return _frame_text(
        [
            {
                "job": s.job.id,
                "GPUs": s.job.model.gpus,
                "status": "done" if s.done else ("to judge" if s.generated else "to run"),
                "why": s.why,
            }
            for s in p.statuses
        ]
    )


def data_lines(p: Prepared) -> list[str]:
    """Records per judged task of the jobs to run, as they are on this machine (or why unknown)."""
    from mis_eval.sweep.status import limited

    tasks = dict.fromkeys(t for s in p.to_run for t in s.missing if t in s.job.judged)
    lines = []
    for task in tasks:
        data = p.probe(task)
        if data.docs is None:
            lines.append(f"  {task}: unknown ({data.problem})")
        else:
            n = limited(len(data.docs), p.plan.limits.limit)
            of = f" of {len(data.docs)}" if n != len(data.docs) else ""
            lines.append(f"  {task}: {n}{of} records, data {data.fingerprint}")
    return lines


def _cost_line(est: JudgeEstimate, price: tuple[float, float] | None, calls: bool) -> str:
    if not calls:
        return f"  {est.spec}: offline, no judge calls"
    how = (
        "tokens per call measured by earlier runs of this judge"
        if est.measured
        else "tokens estimated: prompt/4 + 800 per image + 256 for the answer in, the rubric's max out"
    )
    cost = (
        f"≈ ${est.cost_usd:,.2f} at ${price[0]:g} / ${price[1]:g} per 1M tokens in / out"
        if est.cost_usd is not None and price is not None
        else "cost unknown (no price for this judge model: judge options price_in=, price_out=)"
    )
    tokens = f"≈ {est.tokens_in:,} in + {est.tokens_out:,} out tokens"
    return f"  {est.spec}: {est.calls:,} calls, {tokens}, {cost} ({how})"


def estimate_text(p: Prepared) -> str:
    from mis_eval.sweep.status import estimate

    estimates = estimate(p.assessor, p.to_run)
    lines = [f"\n{len(p.to_run)} of {len(p.statuses)} job(s) to run."]
    if not p.to_run:
        return lines[0]
    lines += ["Judged tasks' data on this machine (plan env, hub offline):", *data_lines(p)]
    lines.append("Judge calls of the jobs to run (at most: replies already in the judge cache cost nothing):")
    for target, est in zip(p.judges, estimates, strict=True):
        lines.append(_cost_line(est, target.price, target.calls))
        if target.problem:
            lines.append(f"    (judge not built here: {target.problem})")
    unknown = sorted(set().union(*(e.unknown for e in estimates)))
    if unknown:
        lines.append(f"  not counted, data not on this machine: {', '.join(unknown)}")
    return "\n".join(lines)


def summary(results: list[JobResult]) -> str:
    return _frame_text(
        [
            {
                "job": r.job,
                "status": r.status,
                "seconds": round(r.seconds),
                "CUDA_VISIBLE_DEVICES": r.devices if r.devices is not None else "",
                "reason / log": f"{r.reason} (log {r.log})" if r.status in ("failed", "incomplete") else "",
            }
            for r in results
        ]
    )


def exit_status(results: list[JobResult]) -> int:
    if any(r.status == "failed" for r in results):
        return EXIT_FAILED
    return EXIT_INCOMPLETE if any(r.status == "incomplete" for r in results) else EXIT_OK


def run(args: argparse.Namespace) -> int:
    from mis_eval.core.record import utc_now
    from mis_eval.sweep.execute import already_done, prepare, reassess, regenerate_leaderboard, run_local
    from mis_eval.sweep.plan import load_plan
    from mis_eval.sweep.state import SweepLock

    plan = load_plan(args.plan)
    # everything is checked before the output folder is touched
    p = prepare(plan, output=args.output, only=args.only, strict=not args.dry_run)
    lock: AbstractContextManager[Any] = nullcontext() if args.dry_run else SweepLock(p.layout.lock)
    with lock:
        if not args.dry_run:
            p = reassess(p)  # another sweep may have finished jobs meanwhile
        print(f"plan {plan.path} -> {p.layout.root}")
        print(job_table(p))
        if args.dry_run:
            print(estimate_text(p))
            return EXIT_OK
        mode = "local" if args.ray is None else f"ray {args.ray or '(local cluster)'}"
        p.state.set_meta(
            plan=str(plan.path.resolve()), plan_sha256=plan.sha256, mode=mode, started_at=utc_now()
        )
        if args.ray is None:
            ran = run_local(p)
        else:
            from mis_eval.sweep.ray_pool import run_ray

            ran = run_ray(p, args.ray or None)
        p.state.set_meta(finished_at=utc_now())
        order = {s.job.id: i for i, s in enumerate(p.statuses)}
        results = sorted(already_done(p) + ran, key=lambda r: order[r.job])
    print()
    print(summary(results))
    built = regenerate_leaderboard(p)
    print(f"\nleaderboard ({len(built.table.rows)} row(s)):")
    for path in built.files.values():
        print(f"  {path}")
    failed = sum(r.status == "failed" for r in results)
    if failed:
        print(f"\n{failed} job(s) failed; run the same command again to run only what is missing")
    return exit_status(results)
