"""Smoke check of mis-eval's headline speed figures: one line each, next to its goal, in < 60 s.

    .venv/bin/python benchmarks/smoke.py                    # every figure
    .venv/bin/python benchmarks/smoke.py --only cli,install # some of them

Each figure comes from the functions of its full benchmark in benchmarks/ (imported, not
copied), in a process of its own with a time limit: one that fails, crashes or hangs prints FAIL with the
reason and the others still run. Exit status 0 always (a guard to read, not a gate). Format,
one line per figure, fields separated by " | " (`parse_line` reads it back):

    NAME | VALUE | goal GOAL | PASS|FAIL|N/A | DETAIL

Sizes, and why each says what the full run says: the judge runs the full benchmark's 2,285
samples, latency, concurrency and fault rate (only the sequential reference loop is left out):
about 1.5 s of the run does not shrink with n (preparing keys, start-up, the last faults'
0.5-1 s of backoff), so fewer samples would inflate the ratio (1,500 gave 1.41x where 2,285
gave 1.21x);
validation times 200 PNGs per way and reports per 1,000; generation uses the tiny model of
benchmarks/generation.py with 16 requests (median of 3 rounds), so its ratio is lower than the
full run's 48: its goal is a CPU guard against batching breaking, not the 10x GPU goal.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUDGET_S = 58.0  # the whole smoke; the stop hook kills it at 65 s


def install_record() -> Path:
    """What scripts/install.sh wrote into the venv running this ({"seconds", "installer", "profile",
    "lock", ...}); $MIS_EVAL_INSTALL_RECORD names another file."""
    if os.environ.get("MIS_EVAL_INSTALL_RECORD"):
        return Path(os.environ["MIS_EVAL_INSTALL_RECORD"])
    here = Path(sys.prefix) / "mis-eval-install.json"
    return here if here.exists() else ROOT / ".venv" / "mis-eval-install.json"


INSTALL_RECORD = install_record()
SEP = " | "


@dataclass
class Figure:
    name: str
    value: str  # with its unit: "1.21x", "0.18s"; "n/a" or "error" when there is none
    goal: str
    status: str  # PASS, FAIL or N/A
    detail: str = ""


def line(f: Figure) -> str:
    return SEP.join([f"{f.name:<24}", f"{f.value:>7}", f"goal {f.goal:<8}", f"{f.status:<4}", f.detail])


def parse_line(text: str) -> Figure:
    """A smoke line back into its fields (ValueError for anything else)."""
    parts = [p.strip() for p in text.rstrip("\n").split(SEP, 4)]
    if len(parts) != 5 or not parts[2].startswith("goal ") or parts[3] not in ("PASS", "FAIL", "N/A"):
        raise ValueError(f"not a smoke line: {text!r}")
    return Figure(parts[0], parts[1], parts[2].removeprefix("goal ").strip(), parts[3], parts[4])


def judged(name: str, value: float, unit: str, goal: float, op: str, detail: str) -> Figure:
    ok = value <= goal if op == "<=" else value >= goal
    return Figure(name, f"{value:.2f}{unit}", f"{op}{goal:g}{unit}", "PASS" if ok else "FAIL", detail)


# -- the figures (each runs in its own process: `smoke.py --child NAME`) ------------------------------
def judge_figures() -> list[Figure]:
    import judge_throughput as jt

    n, latency, concurrency, faults = 2285, 0.2, 64, 0.03
    with tempfile.TemporaryDirectory() as tmp:
        reqs, expected = jt.make_samples(n, Path(tmp), 64)
        with jt.serving(latency, faults, 0.5) as base_url:
            m = jt.measure(
                reqs, expected, base_url, latency=latency, concurrency=concurrency, cache=Path(tmp) / "c"
            )
    lost = f"{m.lost} lost, {m.wrong} wrong"
    first = judged(
        "judge / ideal, faults",
        m.ratio,
        "x",
        1.3,
        "<=",
        f"{m.seconds:.1f}s vs {m.ideal:.1f}s, n={n} c={concurrency} 200ms {faults:.0%} 429/500; {lost}",
    )
    if m.lost or m.wrong:
        first.status = "FAIL"
    goal_s = 2.0 * n / 2285  # the full benchmark's goal: < 2 s for 2,285 samples, 0 calls
    cached = judged(
        "cached re-judge", m.cached_seconds, "s", round(goal_s, 2), "<=", f"n={n}, {m.cached_calls} calls"
    )
    if m.cached_calls or not m.identical:
        cached.status = "FAIL"
    return [first, cached]


def generation_figures() -> list[Figure]:
    import generation as gen
    import torch
    from lmms_eval.models import get_model

    from model_adapters.families import get_family

    torch.set_num_threads(1)  # as the full benchmark: threads on a shared CPU make timings noise
    n, batch, tokens = 16, 16, 16
    extra: dict[str, Any] = {}
    pretrained = gen.tiny_pretrained("qwen2_vl", extra)
    cls = get_model(get_family("qwen2_vl").model_id)
    docs = gen.records(n, 56)
    c = gen.compare_hf(cls, pretrained, extra, docs, docs, batch_size=batch, max_new_tokens=tokens, repeat=3)
    detail = f"tokens/s, tiny Qwen2-VL hf, {n} req, batch {batch}, median of 3; a CPU guard (10x: GPU)"
    return [judged("batched / one-at-a-time", c.token_ratio, "x", 3.0, ">=", detail)]


def leaderboard_figures() -> list[Figure]:
    import leaderboard as lb

    from mis_eval.testing.synthetic_runs import make_results

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_results(Path(tmp) / "results", n_models=20, n_tasks=10)
        seconds = lb.cli_seconds(Path(tmp) / "results", Path(tmp) / "out")
    detail = f"mis-eval leaderboard, fresh process, {len(paths)} runs (20 models x 10 tasks)"
    return [judged("leaderboard, 200 runs", seconds, "s", lb.GOAL_S, "<=", detail)]


def cli_figures() -> list[Figure]:
    import cli_start

    times = {" ".join(args): cli_start.start_seconds(args, repeat=5) for args in cli_start.COMMANDS}
    detail = ", ".join(f"{k} {v:.2f}s" for k, v in times.items()) + " (median of 5)"
    return [judged("CLI start", max(times.values()), "s", cli_start.GOAL_S, "<=", detail)]


def validation_figures() -> list[Figure]:
    import validation

    with tempfile.TemporaryDirectory() as tmp:
        validation.build(Path(tmp) / "root", 100, 384)
        t = validation.measure(Path(tmp) / "root", Path(tmp) / "validated.sqlite")
    cores = os.cpu_count() or 1
    best = min(t.threads, t.processes)
    pool = "threads" if t.threads <= t.processes else "processes"
    cold = judged(  # goal: the cores are used, at least 1.3x one at a time (where there are several)
        "validation cold /1k img",
        best,
        "s",
        round(t.sequential / (1.3 if cores > 1 else 1.0), 2),
        "<=",
        f"{t.images} 384px PNGs, {pool} on {cores} cores: {t.sequential / best:.1f}x one at a time",
    )
    cached = judged(
        "validation cached /1k",
        t.cached,
        "s",
        round(t.sequential / 5, 2),
        "<=",
        f"files unchanged: hashed, {t.decoded_when_cached} decoded; goal 5x under one at a time",
    )
    if t.decoded_when_cached:
        cached.status = "FAIL"
    return [cold, cached]


def install_figures() -> list[Figure]:
    name, goal = "install (scripts/install.sh)", "<=30s"
    if not INSTALL_RECORD.exists():
        return [Figure(name, "n/a", goal, "N/A", f"no {INSTALL_RECORD} (written by scripts/install.sh)")]
    rec = json.loads(INSTALL_RECORD.read_text(encoding="utf-8"))
    detail = f"{rec.get('installer')}, profile {rec.get('profile')}, lock {rec.get('lock')}"
    return [judged(name, float(rec["seconds"]), "s", 30.0, "<=", detail)]


# name -> (how to measure, its own time limit in seconds, names of the lines it prints)
CHECKS: dict[str, tuple[Callable[[], list[Figure]], float, tuple[str, ...]]] = {
    "install": (install_figures, 5, ("install (scripts/install.sh)",)),
    "cli": (cli_figures, 10, ("CLI start",)),
    "judge": (judge_figures, 30, ("judge / ideal, faults", "cached re-judge")),
    "leaderboard": (leaderboard_figures, 12, ("leaderboard, 200 runs",)),
    "validation": (validation_figures, 15, ("validation cold /1k img", "validation cached /1k")),
    "generation": (generation_figures, 25, ("batched / one-at-a-time",)),
}


def child(name: str) -> None:
    sys.path[:0] = [str(HERE), str(ROOT)]
    figures = CHECKS[name][0]()
    print(json.dumps([asdict(f) for f in figures]))


def run_check(name: str, limit: float) -> list[Figure]:
    names = CHECKS[name][2]
    if limit < 2:
        return [Figure(n, "n/a", "-", "FAIL", "skipped: the smoke's 58 s were used up") for n in names]
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name],
            capture_output=True,
            text=True,
            timeout=limit,
            cwd=ROOT,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"},
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise RuntimeError(last[-150:])
        return [Figure(**f) for f in json.loads(proc.stdout.strip().splitlines()[-1])]
    except subprocess.TimeoutExpired:
        return [Figure(n, "error", "-", "FAIL", f"timed out after {limit:.0f}s") for n in names]
    except Exception as e:
        return [Figure(n, "error", "-", "FAIL", f"{type(e).__name__}: {e}"[:200]) for n in names]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help=f"comma-separated subset of: {', '.join(CHECKS)}")
    ap.add_argument("--child", choices=list(CHECKS), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child)
        return 0
    names = [n.strip() for n in a.only.split(",")] if a.only else list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"smoke: unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}")
        return 0
    start = time.perf_counter()
    load = os.getloadavg()[0]
    print(f"mis-eval smoke: {os.cpu_count()} cores, load {load:.1f}; NAME | VALUE | goal | status | detail")
    results: list[Figure] = []
    for name in names:
        left = BUDGET_S - (time.perf_counter() - start)
        for f in run_check(name, min(CHECKS[name][1], left)):
            results.append(f)
            print(line(f), flush=True)
    counts = {s: sum(f.status == s for f in results) for s in ("PASS", "FAIL", "N/A")}
    spent = time.perf_counter() - start
    print(f"mis-eval smoke: {', '.join(f'{v} {k}' for k, v in counts.items())} in {spent:.1f}s")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a guard never fails the caller
        print(f"mis-eval smoke: error: {type(e).__name__}: {e}")
    sys.exit(0)
