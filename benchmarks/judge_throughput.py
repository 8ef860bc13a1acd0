"""Judge throughput: this project's batched judge vs a sequential loop like the MIS reference.

Starts the fake OpenAI-compatible server (mis_eval.testing.fake_openai) in a subprocess with a fixed
latency and injected 429 (with Retry-After) / 500 faults, builds N MIS-format samples (question,
response, two images) and measures, in one run:

* the reference's sequential loop (sync client, 3 attempts, 2 s sleep after an exception);
* this project's judge (`gpt4o` pointed at the fake server), concurrency C, fresh cache;
* the ideal N x latency / C;
* a cached re-run (new judge object, same cache file): wall time and API calls.

    .venv/bin/python benchmarks/judge_throughput.py              # full: ~10 min (sequential part)
    .venv/bin/python benchmarks/judge_throughput.py --sequential-n 200   # sequential part on 200
                                                                          # samples, extrapolated
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from judges.base import JudgeRequest, Status, Verdict  # noqa: E402
from judges.prompting import chat_messages, render_prompt  # noqa: E402
from judges.registry import get_judge  # noqa: E402
from judges.rubric import Rubric  # noqa: E402
from mis_tasks.mis.parsing import RESPONSE_SCHEMA, parse_mis  # noqa: E402

PROMPT = ROOT / "mis_tasks" / "mis" / "judge_prompt.txt"  # the bundled MIS judge prompt (upstream bytes)
SCHEMA = RESPONSE_SCHEMA["json_schema"]["schema"]
FILLER = "The first image shows a kitchen and the second a bottle of cleaning liquid. " * 12


def template() -> str:
    return PROMPT.read_text(encoding="utf-8")


def make_samples(n: int, root: Path, size: int) -> tuple[list[JudgeRequest], list[tuple[str, int]]]:
    rng = np.random.default_rng(0)
    rubric = Rubric(
        name="mis",
        template=template(),
        parse=parse_mis,
        system="You are a helpful assistant.",
        response_format=SCHEMA,
        keyword_labels=("safe", "unsafe"),
    )
    reqs, expected = [], []
    for i in range(n):
        paths = []
        for k in (1, 2):
            p = root / f"{i:05d}_{k}.jpg"
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(p, quality=85)
            paths.append(str(p))
        label, perc = ("Unsafe", 1 + i % 3) if i % 2 else ("Safe", 1 + i % 3)
        fields = {
            "question": f"How do I use these two things together? (sample {i})",
            "response": f"{FILLER} EXPECT={label}/{perc}",
        }
        reqs.append(JudgeRequest(key=f"mis_easy/{i}", rubric=rubric, fields=fields, images=tuple(paths)))
        expected.append((label.lower(), perc))
    return reqs, expected


def start_server(latency: float, fault_rate: float, retry_after: float) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable,
        "-m",
        "mis_eval.testing.fake_openai",
        "--latency",
        str(latency),
        "--fault-rate",
        str(fault_rate),
        "--fault-kinds",
        "429,500",
        "--retry-after",
        str(retry_after),
        "--seed",
        "1",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def server_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/fake/stats") as r:
        stats: dict[str, Any] = json.loads(r.read())
    return stats


def sequential(reqs: list[JudgeRequest], base_url: str) -> tuple[float, int]:
    """The MIS reference loop: one call at a time, 3 attempts, time.sleep(2) after an exception."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    ok = 0
    t0 = time.perf_counter()
    for r in reqs:
        for _ in range(3):
            try:
                args: dict[str, Any] = {
                    "model": "gpt-4o-2024-08-06",
                    "messages": chat_messages(r, render_prompt(r, delimit_untrusted=False)),
                    "temperature": 0.0,
                    "max_tokens": 128,
                    "response_format": {
                        "type": "json_schema",
                        "json_schema": {"name": "mis", "schema": SCHEMA, "strict": True},
                    },
                }
                resp = client.chat.completions.create(**args)
                parse_mis(resp.choices[0].message.content or "")
                ok += 1
                break
            except Exception:
                time.sleep(2)
    return time.perf_counter() - t0, ok


def _core(v: Verdict) -> tuple[object, ...]:
    return v.status, v.label, v.detail.get("perception"), v.raw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2285, help="samples (MIS easy+hard+real is 2,285)")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--fault-rate", type=float, default=0.03, help="share of calls answered 429 or 500")
    ap.add_argument("--retry-after", type=float, default=0.5, help="Retry-After seconds sent with 429")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument(
        "--sequential-n",
        type=int,
        default=None,
        help="time the sequential loop on the first K samples only and extrapolate (labelled)",
    )
    a = ap.parse_args()
    os.environ["OPENAI_API_KEY"] = "sk-bench-not-a-real-key"
    with tempfile.TemporaryDirectory() as tmp:
        reqs, expected = make_samples(a.n, Path(tmp), a.image_size)
        proc, base_url = start_server(a.latency, a.fault_rate, a.retry_after)
        try:
            cache = str(Path(tmp) / "judge.sqlite")
            opts = {"base_url": base_url, "concurrency": a.concurrency, "cache": cache, "timeout": 30}
            judge = get_judge("gpt4o", **opts)
            t0 = time.perf_counter()
            verdicts = judge.judge(reqs)
            t_project = time.perf_counter() - t0
            acct = judge.accounting()
            stats = server_stats(base_url)
            faults, inflight = stats["faults"], stats["mean_inflight"]
            lost = sum(v.status is not Status.OK for v in verdicts)
            wrong = sum(
                v.ok and (v.label, v.detail.get("perception")) != e
                for v, e in zip(verdicts, expected, strict=True)
            )

            calls_before = server_stats(base_url)["calls"]
            rejudge = get_judge("gpt4o", **opts)
            t0 = time.perf_counter()
            again = rejudge.judge(reqs, progress=False)
            t_cached = time.perf_counter() - t0
            cached_calls = int(server_stats(base_url)["calls"]) - int(calls_before)
            same = all(_core(x) == _core(y) for x, y in zip(verdicts, again, strict=True))

            k = a.sequential_n or a.n
            t_seq_k, seq_ok = sequential(reqs[:k], base_url)
            t_seq = t_seq_k * a.n / k
        finally:
            proc.terminate()
            proc.wait()

    ideal = a.n * a.latency / a.concurrency
    seq_label = "measured" if k == a.n else f"measured on {k}, extrapolated x{a.n / k:.1f}"
    print(
        f"\njudge throughput: n={a.n}, latency={a.latency * 1000:.0f} ms, concurrency={a.concurrency}, "
        f"faults={len(faults)} injected ({a.fault_rate:.0%}: 429 w/ Retry-After {a.retry_after}s, 500)"
    )
    print(f"  sequential loop (reference-style) : {t_seq:8.2f} s  ({seq_label}; {seq_ok}/{k} verdicts)")
    print(
        f"  this project                      : {t_project:8.2f} s  ({acct['calls']} calls, "
        f"{acct['retries']} retries, {len(verdicts) - lost}/{a.n} verdicts OK, {wrong} wrong; "
        f"{inflight:.0f} of {a.concurrency} in flight on average)"
    )
    print(f"  ideal n x latency / concurrency   : {ideal:8.2f} s")
    print(
        f"  cached re-run                     : {t_cached:8.2f} s  ({cached_calls} API calls, "
        f"{rejudge.accounting()['cache_hits']} cache hits, verdicts identical: {same})"
    )
    goals = {
        f"within 1.3x of ideal ({t_project / ideal:.2f}x)": t_project <= 1.3 * ideal,
        f">= 40x faster than sequential ({t_seq / t_project:.1f}x)": t_seq >= 40 * t_project,
        f"cached re-run < 2 s with 0 calls ({t_cached:.2f} s, {cached_calls} calls)": t_cached < 2
        and cached_calls == 0,
        f"no verdict lost to faults ({lost} lost, {wrong} wrong)": lost == 0 and wrong == 0,
    }
    for goal, ok in goals.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {goal}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
