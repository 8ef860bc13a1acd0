"""What Ray adds to a sweep: N tiny jobs run sequentially and as Ray tasks, on this machine.

Each job is the offline demo model on one MIS split limited to one record (lmms-eval start-up,
generation, the keyword judge), so the time is the sweep's plumbing, not a model. In one run:

  * sequential: `mis-eval sweep plan.yaml` (one job after another: generate, judge, next job);
  * Ray, one logical GPU: `mis-eval sweep plan.yaml --ray ADDRESS` on a local Ray cluster that
    holds one job at a time. Its wall time also gains from judging job k while job k+1 generates,
    so Ray's own cost is measured where nothing overlaps: the gap on the one GPU between one job's
    generation process ending and the next one's starting (the result's return, the next task's
    scheduling, its worker), per job, next to the same gap in the sequential sweep;
  * Ray, K logical GPUs: the same jobs K at a time (bounded by this machine's cores);
  * the Ray cluster's start, timed apart (a real cluster is started once, not per sweep).

    .venv/bin/python benchmarks/sweep.py [--jobs 4] [--gpus 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml


def write_plan(folder: Path, jobs: int, gpus: int) -> Path:
    from mis_eval.commands.demo import demo_data_root

    plan = {
        "output": str(folder / "out"),
        "judges": ["keyword"],
        "env": {"MIS_DATA_ROOT": str(demo_data_root())},
        # one model, N groups: N jobs of the same size
        "benchmarks": {f"g{i}": [("mis_easy", "mis_hard", "mis_real")[i % 3]] for i in range(jobs)},
        "models": [{"id": "demo", "model": "mis_demo", "gpus": gpus}],
        "limits": {"limit": 1},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return path


def sweep(plan: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    """(wall seconds, the sweep's state file) of one `mis-eval sweep` run."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mis_eval.cli", "sweep", str(plan), *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    state = json.loads((plan.parent / "out" / "sweep_state.json").read_text(encoding="utf-8"))
    return took, state


def gaps(state: dict[str, Any]) -> list[float]:
    """Seconds between one generation process ending and the next one starting (jobs in start order)."""
    runs = sorted((e["generate"]["started_unix"], e["generate"]["seconds"]) for e in state["jobs"].values())
    return [b[0] - (a[0] + a[1]) for a, b in zip(runs, runs[1:], strict=False)]


def generation_seconds(state: dict[str, Any]) -> float:
    return sum(e["generate"]["seconds"] for e in state["jobs"].values())


def ray_sweep(plan: Path, gpus: int) -> tuple[float, float, dict[str, Any]]:
    """(cluster start, sweep wall, state) on a local Ray cluster of `gpus` logical GPUs."""
    import ray

    t0 = time.perf_counter()
    ray.init(
        num_cpus=max(gpus, os.cpu_count() or 1), num_gpus=gpus, include_dashboard=False, log_to_driver=False
    )
    started = time.perf_counter() - t0
    try:
        return started, *sweep(plan, "--ray", str(ray.get_runtime_context().gcs_address))
    finally:
        ray.shutdown()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--gpus", type=int, default=2, help="logical GPUs of the parallel Ray run")
    args = ap.parse_args()
    if args.jobs < 2:
        ap.error("--jobs must be at least 2 (the overhead is measured between jobs)")
    n = args.jobs
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seq, seq_state = sweep(write_plan(root / "sequential", n, 0))
        start1, ray1, ray1_state = ray_sweep(write_plan(root / "ray1", n, 1), 1)
        startk, rayk, _ = ray_sweep(write_plan(root / "rayk", n, 1), args.gpus)
    seq_gap, ray_gap = statistics.mean(gaps(seq_state)), statistics.mean(gaps(ray1_state))
    print(f"{n} jobs (demo model, 1 record each, keyword judge), {os.cpu_count()} CPU core(s)")
    print(f"  sequential sweep:              {seq:7.1f} s  ({seq / n:5.1f} s per job)")
    print(f"  Ray, 1 GPU (one job at once):  {ray1:7.1f} s  (cluster start {start1:.1f} s, not included)")
    print(f"  Ray, {args.gpus} GPUs:{'':19}{rayk:7.1f} s  (cluster start {startk:.1f} s, not included)")
    print(
        f"  generation processes, summed:  {generation_seconds(seq_state):7.1f} s sequential, "
        f"{generation_seconds(ray1_state):.1f} s on Ray (1 GPU)"
    )
    print(
        f"  between two jobs on one GPU:   {seq_gap * 1000:7.0f} ms sequential (its judging), "
        f"{ray_gap * 1000:.0f} ms on Ray"
    )
    print(f"  overhead Ray adds per job:     {ray_gap * 1000:7.0f} ms (Ray's gap; judging overlaps next job)")
    print(f"  speed-up with {args.gpus} GPUs vs sequential: {seq / rayk:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
