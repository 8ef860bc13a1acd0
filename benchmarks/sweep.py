"""What Ray adds to a sweep: N tiny jobs run sequentially and as Ray tasks, on this machine.

Each job is the offline demo model on one MIS split limited to one record (lmms-eval start-up,
generation, the keyword judge), so the time is the sweep's plumbing, not a model. In one run:

  * sequential: `mis-eval sweep plan.yaml` (one job after another);
  * Ray, one logical GPU: `mis-eval sweep plan.yaml --ray ADDRESS` on a local Ray cluster that
    can hold one job at a time, so the difference to sequential, per job, is Ray's own overhead
    (connecting, scheduling, the task's worker, the result) with nothing gained from parallelism;
  * Ray, K logical GPUs: the same jobs K at a time (bounded by this machine's cores);
  * the Ray cluster's start, timed apart (a real cluster is started once, not per sweep).

    .venv/bin/python benchmarks/sweep.py [--jobs 4] [--gpus 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def sweep(plan: Path, *extra: str) -> float:
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
    return took


def ray_sweep(plan: Path, gpus: int) -> tuple[float, float]:
    """(cluster start, sweep) seconds on a local Ray cluster of `gpus` logical GPUs."""
    import ray

    t0 = time.perf_counter()
    ray.init(
        num_cpus=max(gpus, os.cpu_count() or 1), num_gpus=gpus, include_dashboard=False, log_to_driver=False
    )
    started = time.perf_counter() - t0
    try:
        return started, sweep(plan, "--ray", str(ray.get_runtime_context().gcs_address))
    finally:
        ray.shutdown()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--gpus", type=int, default=2, help="logical GPUs of the parallel Ray run")
    args = ap.parse_args()
    n = args.jobs
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seq = sweep(write_plan(root / "sequential", n, 0))
        start1, ray1 = ray_sweep(write_plan(root / "ray1", n, 1), 1)
        startk, rayk = ray_sweep(write_plan(root / "rayk", n, 1), args.gpus)
    print(f"{n} jobs (demo model, 1 record each, keyword judge), {os.cpu_count()} CPU core(s)")
    print(f"  sequential sweep:              {seq:7.1f} s  ({seq / n:5.1f} s per job)")
    print(f"  Ray, 1 GPU (one job at once):  {ray1:7.1f} s  (cluster start {start1:.1f} s, not included)")
    print(f"  Ray, {args.gpus} GPUs:{'':19}{rayk:7.1f} s  (cluster start {startk:.1f} s, not included)")
    print(f"  overhead Ray adds per job:     {(ray1 - seq) / n:7.1f} s  ((Ray 1 GPU - sequential) / {n})")
    print(f"  speed-up with {args.gpus} GPUs vs sequential: {seq / rayk:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
