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
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
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


@contextlib.contextmanager
def serving(latency: float, fault_rate: float, retry_after: float) -> Iterator[str]:
    """The fake server in its own process (its CPU apart from the judge's); yields its base URL."""
    proc, base_url = start_server(latency, fault_rate, retry_after)
    try:
        yield base_url
    finally:
        proc.terminate()
        proc.wait()


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


@dataclass
class Measured:
    seconds: float  # this project's judge, fresh cache
    ideal: float  # n x latency / concurrency
    calls: int
    retries: int
    lost: int  # samples without an ok verdict
    wrong: int  # ok verdicts that differ from the expected one
    faults: int  # injected by the server
    mean_inflight: float  # requests in flight on average, counted by the server
    cached_seconds: float  # the same requests again, new judge object, same cache
    cached_calls: int
    cache_hits: int
    identical: bool  # cached verdicts == first verdicts

    @property
    def ratio(self) -> float:
        return self.seconds / self.ideal


def measure(
    reqs: list[JudgeRequest],
    expected: list[tuple[str, int]],
    base_url: str,
    *,
    latency: float,
    concurrency: int,
    cache: Path,
) -> Measured:
    """This project's judge on `reqs`, then a cached re-run, against a running fake server."""
    os.environ["OPENAI_API_KEY"] = "sk-bench-not-a-real-key"  # never a real key to the fake server
    opts = {"base_url": base_url, "concurrency": concurrency, "cache": str(cache), "timeout": 30}
    start = server_stats(base_url)
    judge = get_judge("gpt4o", **opts)
    t0 = time.perf_counter()
    verdicts = judge.judge(reqs)
    seconds = time.perf_counter() - t0
    acct = judge.accounting()
    stats = server_stats(base_url)
    lost = sum(v.status is not Status.OK for v in verdicts)
    wrong = sum(
        v.ok and (v.label, v.detail.get("perception")) != e for v, e in zip(verdicts, expected, strict=True)
    )
    rejudge = get_judge("gpt4o", **opts)
    t0 = time.perf_counter()
    again = rejudge.judge(reqs, progress=False)
    cached_seconds = time.perf_counter() - t0
    return Measured(
        seconds=seconds,
        ideal=len(reqs) * latency / concurrency,
        calls=acct["calls"],
        retries=acct["retries"],
        lost=lost,
        wrong=wrong,
        faults=len(stats["faults"]) - len(start["faults"]),
        mean_inflight=stats["mean_inflight"],
        cached_seconds=cached_seconds,
        cached_calls=int(server_stats(base_url)["calls"]) - int(stats["calls"]),
        cache_hits=rejudge.accounting()["cache_hits"],
        identical=all(_core(x) == _core(y) for x, y in zip(verdicts, again, strict=True)),
    )


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
    with tempfile.TemporaryDirectory() as tmp:
        reqs, expected = make_samples(a.n, Path(tmp), a.image_size)
        with serving(a.latency, a.fault_rate, a.retry_after) as base_url:
            m = measure(
                reqs,
                expected,
                base_url,
                latency=a.latency,
                concurrency=a.concurrency,
                cache=Path(tmp) / "judge.sqlite",
            )
            k = a.sequential_n or a.n
            t_seq_k, seq_ok = sequential(reqs[:k], base_url)
            t_seq = t_seq_k * a.n / k

    seq_label = "measured" if k == a.n else f"measured on {k}, extrapolated x{a.n / k:.1f}"
    print(
        f"\njudge throughput: n={a.n}, latency={a.latency * 1000:.0f} ms, concurrency={a.concurrency}, "
        f"faults={m.faults} injected ({a.fault_rate:.0%}: 429 w/ Retry-After {a.retry_after}s, 500)"
    )
    print(f"  sequential loop (reference-style) : {t_seq:8.2f} s  ({seq_label}; {seq_ok}/{k} verdicts)")
    print(
        f"  this project                      : {m.seconds:8.2f} s  ({m.calls} calls, "
        f"{m.retries} retries, {a.n - m.lost}/{a.n} verdicts OK, {m.wrong} wrong; "
        f"{m.mean_inflight:.0f} of {a.concurrency} in flight on average)"
    )
    print(f"  ideal n x latency / concurrency   : {m.ideal:8.2f} s")
    print(
        f"  cached re-run                     : {m.cached_seconds:8.2f} s  ({m.cached_calls} API calls, "
        f"{m.cache_hits} cache hits, verdicts identical: {m.identical})"
    )
    goals = {
        f"within 1.3x of ideal ({m.ratio:.2f}x)": m.ratio <= 1.3,
        f">= 40x faster than sequential ({t_seq / m.seconds:.1f}x)": t_seq >= 40 * m.seconds,
        f"cached re-run < 2 s with 0 calls ({m.cached_seconds:.2f} s, {m.cached_calls} calls)": (
            m.cached_seconds < 2 and m.cached_calls == 0
        ),
        f"no verdict lost to faults ({m.lost} lost, {m.wrong} wrong)": m.lost == 0 and m.wrong == 0,
    }
    for goal, ok in goals.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {goal}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
