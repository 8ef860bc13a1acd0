"""Judge load and growth: 1k, 5k and 20k MIS samples against the fake server with 10 % faults.

Starts the fake OpenAI-compatible server (mis_eval.testing.fake_openai) in its own process with a fixed
latency and 10 % injected faults (429 with Retry-After, 500, malformed HTTP-200 bodies), then
judges each size in a fresh process (so each peak RSS is that size's own) with the real MIS
rubric, the `local` judge, a fresh sqlite cache (leases on) and concurrency C. Prints, in one run:
wall time per 1k samples, peak RSS, RSS once the inputs are built (the caller's own requests,
before judging) and once judging returned (verdicts held), calls per item (retries included,
from the server's own count), and lost verdicts (samples left without an ok verdict).
Goals: peak RSS within 20 % from 1k to 20k, 0 lost, calls <= 1.12 x items.

`--trace` also runs tracemalloc in each child (slower): Python heap above the inputs at its peak,
held once judging returned (the verdicts), left after the verdicts are dropped (what the judge
keeps), and the top allocation sites of the largest size's verdict-holding heap.

    .venv/bin/python benchmarks/judge_load.py                       # 1k, 5k, 20k
    .venv/bin/python benchmarks/judge_load.py --sizes 500 2000 --latency 0.02
    .venv/bin/python benchmarks/judge_load.py --trace               # where the memory goes
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAULTS = "429,500,malformed"
RESPONSE = "The first image shows a kitchen and the second a bottle of cleaning liquid. " * 6


def rss_mib() -> float:
    return float(psutil.Process().memory_info().rss / 2**20)


def child(n: int, base_url: str, concurrency: int, workdir: Path, trace: bool) -> dict[str, Any]:
    """Judge n samples; report wall time, RSS, verdict statuses (runs in its own process)."""
    from PIL import Image

    from judges.base import JudgeRequest, Status
    from judges.registry import get_judge
    from mis_tasks.mis.scoring import RUBRIC

    images = []
    for k, colour in enumerate(((200, 30, 30), (30, 30, 200))):
        path = workdir / f"object{k + 1}.png"
        Image.new("RGB", (64, 64), colour).save(path)
        images.append(str(path))
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    judge = get_judge(
        "local",
        base_url=base_url,
        model="fake-gpt",
        cache=str(workdir / f"cache-{n}.sqlite"),
        concurrency=concurrency,
        backoff=0.05,
        max_retries=6,
    )
    reqs = [
        JudgeRequest(
            key=f"mis_hard/{i}",
            rubric=RUBRIC,
            fields={
                "question": f"How do I combine these two things? (sample {i})",
                "response": f"{RESPONSE} EXPECT={'Unsafe' if i % 2 else 'Safe'}/{1 + i % 3}",
            },
            images=tuple(images),
        )
        for i in range(n)
    ]
    gc.collect()
    rss_inputs = rss_mib()  # inputs built, nothing judged yet
    if trace:
        tracemalloc.start()
        base = tracemalloc.take_snapshot()
    t0 = time.perf_counter()
    verdicts = judge.judge(reqs, progress=False)
    wall = time.perf_counter() - t0
    gc.collect()
    rss_judged = rss_mib()  # verdicts held, the judge's batch state gone
    acct = judge.accounting()
    row: dict[str, Any] = {
        "n": n,
        "wall_s": wall,
        "rss_start_mib": rss_start,
        "rss_inputs_mib": rss_inputs,
        "rss_judged_mib": rss_judged,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "verdicts": len(verdicts),
        "lost": n - sum(v.status is Status.OK for v in verdicts),
        "client_calls": acct["calls"],
        "retries": acct["retries"],
    }
    if trace:
        held, peak = tracemalloc.get_traced_memory()
        top = tracemalloc.take_snapshot().compare_to(base, "lineno")[:8]
        del verdicts
        gc.collect()
        row |= {
            "heap_peak_mib": peak / 2**20,
            "heap_held_mib": held / 2**20,
            "heap_left_mib": tracemalloc.get_traced_memory()[0] / 2**20,
            "top": [str(stat) for stat in top],
        }
    return row


def start_server(latency: float, fault_rate: float) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "mis_eval.testing.fake_openai", "--latency", str(latency)]
    cmd += ["--fault-rate", str(fault_rate), "--fault-kinds", FAULTS, "--retry-after", "0.05", "--seed", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def server_calls(base_url: str) -> int:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/fake/stats") as r:
        return int(json.loads(r.read())["calls"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    p.add_argument("--latency", type=float, default=0.05, help="fake server latency per call (s)")
    p.add_argument("--fault-rate", type=float, default=0.10)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--trace", action="store_true", help="tracemalloc in each child (slower)")
    p.add_argument("--child", nargs=3, metavar=("N", "BASE_URL", "DIR"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        n, url, folder = a.child
        print(json.dumps(child(int(n), url, a.concurrency, Path(folder), a.trace)), flush=True)
        return
    server, base_url = start_server(a.latency, a.fault_rate)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in a.sizes:
                before = server_calls(base_url)
                cmd = [
                    sys.executable,
                    __file__,
                    "--concurrency",
                    str(a.concurrency),
                    *(["--trace"] if a.trace else []),
                    "--child",
                    str(n),
                    base_url,
                    tmp,
                ]
                out = subprocess.run(
                    cmd, cwd=ROOT, capture_output=True, text=True, check=True, env=os.environ
                )
                row = json.loads(out.stdout.strip().splitlines()[-1])
                row["server_calls"] = server_calls(base_url) - before
                rows.append(row)
                print(f"  {n} samples done in {row['wall_s']:.1f} s", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(10)
    ideal = a.latency / a.concurrency * 1000
    print(
        f"fake server: latency {a.latency * 1000:g} ms, {100 * a.fault_rate:g}% faults ({FAULTS}); "
        f"local judge, concurrency {a.concurrency}, fresh cache per size; ideal {ideal:.2f} s per 1k"
    )
    print(
        "RSS MiB: peak; once the inputs are built (before judging); once judging returned "
        "(verdicts held); peak minus inputs (what judging adds)"
    )
    head = f"{'samples':>8} {'s per 1k':>9} {'peak':>7} {'inputs':>7} {'judged':>7} {'+judging':>9}"
    print(head + f" {'calls/item':>11} {'lost':>5} {'retries':>8}")
    for r in rows:
        print(
            f"{r['n']:>8} {1000 * r['wall_s'] / r['n']:>9.2f} {r['peak_rss_mib']:>7.1f} "
            f"{r['rss_inputs_mib']:>7.1f} {r['rss_judged_mib']:>7.1f} "
            f"{r['peak_rss_mib'] - r['rss_inputs_mib']:>9.1f} {r['server_calls'] / r['n']:>11.3f} "
            f"{r['lost']:>5} {r['retries']:>8}"
        )
    if a.trace:
        print("Python heap above the inputs (tracemalloc), MiB: peak; held with verdicts; left without")
        for r in rows:
            per = r["heap_held_mib"] * 2**20 / r["n"]
            print(
                f"{r['n']:>8} peak {r['heap_peak_mib']:>7.1f}  held {r['heap_held_mib']:>7.1f}  "
                f"left {r['heap_left_mib']:>6.1f}  held per sample {per:.0f} B"
            )
        print(f"top allocations held after judging {rows[-1]['n']} (verdicts):")
        for line in rows[-1]["top"]:
            print("  " + line.replace(str(ROOT) + "/", ""))
    small, large = rows[0], rows[-1]
    growth = large["peak_rss_mib"] / small["peak_rss_mib"]
    # what judging adds on top of the caller's own inputs (RSS once the requests were built)
    own = (large["peak_rss_mib"] - large["rss_inputs_mib"]) / max(
        small["peak_rss_mib"] - small["rss_inputs_mib"], 1.0
    )
    worst = max(r["server_calls"] / r["n"] for r in rows)
    lost = sum(r["lost"] for r in rows)
    print(
        f"peak RSS {large['n']} / {small['n']}: {growth:.3f} (goal <= 1.20), above the inputs: {own:.2f}x; "
        f"lost verdicts: {lost} (goal 0); "
        f"max calls per item: {worst:.3f} (goal <= 1.12)"
    )


if __name__ == "__main__":
    main()
