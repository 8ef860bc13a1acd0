"""The sweep's generation jobs as Ray tasks: Ray places each where its GPUs are free.

Each job's generation is one task asking for its model's `gpus` (and `cpus`), so a pool of GPUs
or a multi-node cluster runs as many at once as fit; Ray sets each task's
`CUDA_VISIBLE_DEVICES`, which the job's process inherits. Ray schedules; nothing here queues or
places work. Judging runs here, on the machine running the sweep, as each generation finishes
(a few judge processes at once on the shared judge cache, whose leases make that safe).

Ray is imported only here, and only when `mis-eval sweep --ray` is used. A task that Ray itself
loses (its worker killed for memory, crashed, its node gone) fails its job with Ray's reason.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from mis_eval.sweep.execute import (
    JobResult,
    Prepared,
    Say,
    generation_phase,
    judge_and_record,
    record_failure,
    record_generation,
    record_start,
)
from mis_eval.sweep.runner import Outcome, run_phase_dict
from mis_eval.sweep.status import JobStatus


def ray_failure(error: BaseException) -> str:
    """Why Ray could not finish a task, in words (out of memory, worker crash, cancelled, node lost)."""
    import ray.exceptions as rx

    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    if isinstance(error, rx.OutOfMemoryError):
        return f"out of memory: Ray's memory monitor killed the task's worker ({first})"
    if isinstance(error, rx.WorkerCrashedError):
        return f"the Ray worker died (killed, or out of memory): {first}"
    if isinstance(error, rx.TaskCancelledError):
        return "cancelled"
    if isinstance(error, rx.NodeDiedError):
        return f"the node running it died: {first}"
    return f"Ray: {type(error).__name__}: {first}"


def connect(address: str | None) -> bool:
    """Connect to (or start) a Ray cluster; True when this call did it (and so must shut it down).

    An already initialised Ray (a notebook, a test) is used as it is.
    """
    import ray

    if ray.is_initialized():
        return False
    if address is None and not os.environ.get("RAY_ADDRESS"):  # a cluster of this machine's CPUs and GPUs
        ray.init(log_to_driver=False, include_dashboard=False)
    else:  # join one: the address given, else $RAY_ADDRESS
        ray.init(address=address, log_to_driver=False)
    return True


def run_ray(p: Prepared, address: str | None, say: Say = print) -> list[JobResult]:
    """Every job to run: generation as Ray tasks, judging here as each finishes."""
    import ray

    started = connect(address)
    task = ray.remote(run_phase_dict)
    pool = ThreadPoolExecutor(max_workers=p.plan.limits.judge_workers, thread_name_prefix="judge")
    judging: list[Future[JobResult]] = []
    results: list[JobResult] = []
    pending: dict[Any, JobStatus] = {}
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        say(f"Ray cluster: {ray.cluster_resources().get('CPU', 0):g} CPU(s), {gpus:g} GPU(s)")
        for status in p.to_run:
            job = status.job
            say(f"{job.id}: {status.why}")
            if status.generated:
                judging.append(pool.submit(judge_and_record, p, status, None))
            elif job.model.gpus > gpus:
                reason = f"needs {job.model.gpus} GPU(s); the Ray cluster has {gpus:g}"
                results.append(record_failure(p, status, reason))
            else:
                phase = generation_phase(p, status)
                record_start(p, phase)
                ref = task.options(
                    num_gpus=job.model.gpus,
                    num_cpus=job.model.cpus,
                    max_retries=p.plan.limits.retries,
                    retry_exceptions=False,
                    name=f"mis-eval sweep {job.id}",
                ).remote(asdict(phase))
                pending[ref] = status
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            status = pending.pop(ready[0])
            try:
                out = Outcome(**ray.get(ready[0]))
            except ray.exceptions.RayError as e:
                result = record_failure(p, status, ray_failure(e), str(p.layout.log(status.job, "generate")))
                say(f"{status.job.id}: FAILED: {result.reason}")
                results.append(result)
                continue
            failed = record_generation(p, status, out)
            if failed is not None:
                say(f"{status.job.id}: FAILED: {failed.reason} (log {failed.log})")
                results.append(failed)
                continue
            say(f"{status.job.id}: generated on {out.host} (CUDA_VISIBLE_DEVICES={out.cuda_visible_devices})")
            judging.append(pool.submit(judge_and_record, p, status, out))
        for future in judging:
            result = future.result()
            say(f"{result.job}: {result.status} in {result.seconds:.0f} s")
            results.append(result)
    except BaseException:
        for ref, status in pending.items():  # the workers die, and their jobs with them (processes.py)
            ray.cancel(ref, force=True)
            p.state.update(status.job.id, status="failed", reason="interrupted")
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        if started:
            ray.shutdown()
    return results
