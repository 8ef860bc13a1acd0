"""The device check: the transformers path at the paper's model sizes, on one GPU, in one command.

    python benchmarks/gpu_check.py              # GPU: Qwen2-VL-7B, LLaVA-OV-7B, InternVL2.5-8B, Idefics3-8B
    python benchmarks/gpu_check.py --dry-run    # CPU, tiny configs (tests/test_gpu_check.py runs this)
    python benchmarks/gpu_check.py --sizes mid --device cpu --dtype bfloat16 --n 2 --batch-size 2 \
        --new-tokens 4                          # CPU, published vocabularies and vision widths, bf16

On the lent GPU machine (device tool `run`; it has torch and transformers but no lmms-eval, vLLM or
hub): the repo's working tree is what travels (a few MiB, nothing to carry), so from its root:

    run(command="PYTHONUNBUFFERED=1 timeout 500 python3 benchmarks/gpu_check.py --json $OUT/gpu_check.json",
        timeout_s=560)

It should finish in about 3 minutes on one H100 (an estimate: it has not run on a GPU yet; see the
README, "On a GPU: the device check"). It starts no new family once --budget-s (default 420 s) is
spent, and a family that fails (out of memory, ...) is reported while the others still run, so the
tables always print.

Each family is built from its published architecture with random weights, directly on the device
(mis_eval/testing/full_size.py: config, tiny BPE tokenizer with the family's special tokens, the
published image-processor settings; no weights written or read), and driven through the project's
transformers backend (model_adapters/backend_hf.py) exactly as lmms-eval would drive it: the
family's prompt layout, its reference processor settings, greedy decoding. Per family it prints:

* visual tokens of a 1024x768 image, alone and in a two-image prompt, measured from the processor's
  output, against the count the reference's own rule gives (qwen_vl_utils, InternVL
  dynamic_preprocess, LLaVA-NeXT anyres, Idefics3 crops); a difference fails unless listed as a
  known deviation (LLaVA-OneVision's multi-image prompts in transformers);
* requests/s and output tokens/s for --n requests of two images and a MIS question, batched
  (--batch-size) and one at a time, at a fixed output length: the checkpoint has no EOS, so every
  answer is --new-tokens long (checked);
* peak GPU memory, the attention implementation of the text and vision models;
* whether every batched answer equals its one-at-a-time answer, compared as token ids (the tiny
  tokenizer cannot spell most of a full vocabulary). In float32 a difference fails the check; in
  bf16 batch shapes change the kernels' rounding, so the exact-match rate and the first differing
  position are reported instead.

Imports only torch, transformers, PIL, numpy and the repo's own modules; it says so at the end.
Exit status: 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from mis_eval.core.samples import FAILED_SENTINEL  # noqa: E402
from mis_eval.testing.full_size import SPECS, Spec, build_model, write_checkpoint  # noqa: E402
from model_adapters.backend_hf import HFBackend  # noqa: E402
from model_adapters.batching import GenRequest  # noqa: E402
from model_adapters.families import get_family  # noqa: E402
from model_adapters.params import GenParams  # noqa: E402

WIDTH, HEIGHT = 1024, 768
FAMILIES = ("qwen2_vl", "llava_onevision", "internvl2_5", "idefics3")
QUESTIONS = ROOT / "mis_eval" / "demo_data" / "mis_hard.json"  # the bundled MIS-format sample


@dataclass
class Result:
    family: str
    checkpoint: str
    size: str
    params_b: float
    dtype: str
    device: str
    attention: str
    tokens_one_image: int  # in a prompt with one 1024x768 image
    tokens_two_images: int  # in a prompt with two
    expected_per_image: int  # the reference's rule
    transformers_multi_image: (
        int | None
    )  # per image of a multi-image prompt, where transformers knowingly differs
    prompt_tokens: int
    rule: str
    n: int
    batch_size: int
    new_tokens: int
    build_s: float
    batched_s: float
    single_s: float
    fixed_length: bool
    equal_rows: int
    first_divergence: list[int | None] = field(default_factory=list)
    peak_gib: float | None = None
    notes: str = ""

    @property
    def token_status(self) -> str:
        if self.tokens_one_image != self.expected_per_image:
            return "MISMATCH"
        if self.tokens_two_images == 2 * self.expected_per_image:
            return "as reference"
        if self.transformers_multi_image and self.tokens_two_images == 2 * self.transformers_multi_image:
            return "known deviation, see note"
        return "MISMATCH"


def images(i: int) -> list[Image.Image]:
    """Two 1024x768 images with content that differs per request (seeded noise over a gradient)."""
    rng = np.random.default_rng(i)
    out = []
    for k in range(2):
        ramp = np.linspace(0, 255, WIDTH, dtype=np.float32)[None, :, None]
        noise = rng.integers(0, 96, size=(HEIGHT, WIDTH, 3)).astype(np.float32)
        pixels = (0.6 * ramp + noise + 40 * k) % 256
        out.append(Image.fromarray(pixels.astype(np.uint8), "RGB"))
    return out


def questions() -> list[str]:
    return [str(r["question"]) for r in json.loads(QUESTIONS.read_text(encoding="utf-8"))]


class TokenRecorder:
    """Keeps the new-token ids the backend decodes (its tokenizer's batch_decode), in call order."""

    def __init__(self, tokenizer: Any) -> None:
        self.rows: list[list[int]] = []
        self._decode = tokenizer.batch_decode
        tokenizer.batch_decode = self

    def __call__(self, sequences: Any, **kwargs: Any) -> Any:
        self.rows.extend([int(t) for t in row] for row in sequences.tolist())
        return self._decode(sequences, **kwargs)

    def take(self) -> list[list[int]]:
        rows, self.rows = self.rows, []
        return rows


def first_difference(a: list[int], b: list[int]) -> int | None:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
        None if len(a) == len(b) else min(len(a), len(b)),  # one a prefix of the other
    )


def visual_tokens(backend: HFBackend, spec: Spec, imgs: list[Image.Image]) -> int:
    prompt = backend.family.layout.render("Describe.", len(imgs), backend.template_owner, backend.image_token)
    ids = backend._encode([prompt], [imgs])["input_ids"]
    return int((ids == backend.tokenizer.convert_tokens_to_ids(spec.image_token)).sum())


def attention_used(model: Any) -> str:
    config = model.config
    parts = [
        getattr(getattr(config, name, None), "_attn_implementation", None)
        for name in ("text_config", "vision_config")
    ]
    return "/".join(str(p) for p in parts if p) or str(getattr(config, "_attn_implementation", "?"))


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(
    backend: HFBackend, reqs: list[GenRequest], recorder: TokenRecorder
) -> tuple[float, list[list[int]]]:
    sync(backend.device)
    start = time.perf_counter()
    texts = backend.generate(reqs)
    sync(backend.device)
    elapsed = time.perf_counter() - start
    rows = recorder.take()
    failed = [t for t in texts if t.startswith(FAILED_SENTINEL)]
    if failed:  # the backend records a request that raised as a failed answer
        raise RuntimeError(f"{len(failed)} of {len(reqs)} generations failed: {failed[0][:500]}")
    if len(rows) != len(reqs) or len(texts) != len(reqs):
        raise RuntimeError(f"{len(reqs)} requests gave {len(texts)} answers and {len(rows)} token rows")
    return elapsed, rows


def check_family(name: str, a: argparse.Namespace, dtype: Any, workdir: Path) -> Result:
    import torch

    spec, family = SPECS[name], get_family(name)
    cuda = a.device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    path, config = write_checkpoint(spec, a.sizes, workdir / name)
    start = time.perf_counter()
    model = build_model(family.hf_model, config, a.device, dtype, seed=a.seed)
    model.generation_config.eos_token_id = None  # no EOS: every answer is exactly --new-tokens long
    sync(a.device)
    build_s = time.perf_counter() - start
    backend = HFBackend(family, str(path), batch_size=a.batch_size, max_images=2, model=model)
    recorder = TokenRecorder(backend.tokenizer)
    qs = questions()
    params = GenParams(max_new_tokens=a.new_tokens)
    reqs = []
    for i in range(a.n):
        q = qs[i % len(qs)]
        prompt = family.layout.render(q, 2, backend.template_owner, backend.image_token)
        reqs.append(GenRequest(key=f"{name}/{i}", prompt=prompt, images=images(i), params=params, question=q))
    one = visual_tokens(backend, spec, reqs[0].images[:1])
    two = visual_tokens(backend, spec, reqs[0].images)
    prompt_tokens = int(backend._encode([reqs[0].prompt], [reqs[0].images])["attention_mask"].sum())

    if not a.dry_run:  # first-call costs (CUDA context, kernels, allocator) out of the timings
        warm = [
            GenRequest(r.key, r.prompt, r.images, GenParams(max_new_tokens=2), r.question) for r in reqs[:1]
        ]
        backend.generate(warm)
        recorder.take()
    backend.batch_size = a.batch_size
    batched_s, batched = timed(backend, reqs, recorder)
    backend.batch_size = 1
    single_s, single = timed(backend, reqs, recorder)

    result = Result(
        family=name,
        checkpoint=spec.checkpoint,
        size=a.sizes,
        params_b=sum(p.numel() for p in model.parameters()) / 1e9,
        dtype=str(model.dtype).removeprefix("torch."),  # as built, not as asked
        device=torch.cuda.get_device_name() if cuda else str(model.device),
        attention=attention_used(model),
        tokens_one_image=one,
        tokens_two_images=two,
        expected_per_image=spec.expected_tokens(WIDTH, HEIGHT),
        transformers_multi_image=multi(WIDTH, HEIGHT) if (multi := spec.transformers_multi_image) else None,
        prompt_tokens=prompt_tokens,
        rule=spec.rule,
        n=a.n,
        batch_size=a.batch_size,
        new_tokens=a.new_tokens,
        build_s=build_s,
        batched_s=batched_s,
        single_s=single_s,
        fixed_length=all(len(r) == a.new_tokens for r in batched + single),
        equal_rows=sum(b == s for b, s in zip(batched, single, strict=True)),
        first_divergence=[first_difference(b, s) for b, s in zip(batched, single, strict=True)],
        peak_gib=torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        notes=spec.notes,
    )
    del backend, model, recorder
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def tables(results: list[Result]) -> str:
    head1 = (
        "| family | architecture of | size | params (B) | dtype | attention (text/vision) "
        "| visual tokens, 1 image | in a 2-image prompt | reference rule, per image | visual tokens "
        "| prompt tokens |"
    )
    lines = [head1, "|" + " --- |" * 11]
    for r in results:
        lines.append(
            f"| {r.family} | {r.checkpoint} | {r.size} | {r.params_b:.2f} | {r.dtype} | {r.attention} "
            f"| {r.tokens_one_image} | {r.tokens_two_images} | {r.expected_per_image} | {r.token_status} "
            f"| {r.prompt_tokens} |"
        )
    head2 = (
        "| family | requests x new tokens | batched req/s | batched out tok/s | one-at-a-time req/s "
        "| one-at-a-time out tok/s | speed-up | peak GPU GiB | batch == one-at-a-time | first difference at |"
    )
    lines += ["", head2, "|" + " --- |" * 10]
    for r in results:
        out = r.n * r.new_tokens
        diverged = sorted({d for d in r.first_divergence if d is not None})
        peak = f"{r.peak_gib:.1f}" if r.peak_gib is not None else "n/a (cpu)"
        fixed = "" if r.fixed_length else " (NOT fixed length)"
        lines.append(
            f"| {r.family} | {r.n} x {r.new_tokens}{fixed} "
            f"| {r.n / r.batched_s:.2f} | {out / r.batched_s:.1f} "
            f"| {r.n / r.single_s:.2f} | {out / r.single_s:.1f} | {r.single_s / r.batched_s:.2f}x | {peak} "
            f"| {r.equal_rows}/{r.n} | {', '.join(map(str, diverged)) or '-'} |"
        )
    notes = [f"- {r.family}: {r.notes}" for r in results if r.notes]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="tiny configs on the CPU in float32, few requests")
    p.add_argument(
        "--families", default=",".join(FAMILIES), help=f"comma-separated, of {', '.join(FAMILIES)}"
    )
    p.add_argument("--sizes", choices=("full", "mid", "tiny"), default="full")
    p.add_argument("--device", default=None, help="default: cuda when visible, else cpu")
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    p.add_argument("--n", type=int, default=8, help="requests (two images each)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=64, help="the fixed output length")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-s", type=float, default=420, help="start no new family after this many seconds")
    p.add_argument(
        "--require-equal",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fail when a batched answer differs (default: only in float32)",
    )
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    if a.dry_run:
        a.sizes, a.device, a.dtype = "tiny", a.device or "cpu", "float32"
        a.n, a.batch_size, a.new_tokens = min(a.n, 3), min(a.batch_size, 3), min(a.new_tokens, 6)
    started = time.perf_counter()
    import torch

    a.device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if a.device == "cpu":
        torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    dtype = getattr(torch, a.dtype)
    require_equal = a.require_equal if a.require_equal is not None else dtype == torch.float32
    names = [f.strip() for f in a.families.split(",") if f.strip()]
    unknown = sorted(set(names) - set(SPECS))
    if unknown:
        p.error(f"unknown families {unknown}; choose from {', '.join(SPECS)}")
    print(
        f"gpu_check: {', '.join(names)} at size {a.sizes}, {a.dtype} on {a.device}, "
        f"torch {torch.__version__}",
        flush=True,
    )

    results: list[Result] = []
    skipped: list[str] = []
    broken: list[str] = []  # one family's failure (out of memory, ...) must not cost the others' figures
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            elapsed = time.perf_counter() - started
            if elapsed > a.budget_s:
                skipped.append(name)
                continue
            try:
                r = check_family(name, a, dtype, Path(tmp))
            except Exception as exc:  # noqa: BLE001 - reported in the summary and the exit status
                traceback.print_exc()
                broken.append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
                gc.collect()
                if a.device.startswith("cuda"):
                    torch.cuda.empty_cache()
                continue
            results.append(r)
            print(
                f"  {name}: built in {r.build_s:.1f} s, batched {r.batched_s:.1f} s, one at a time "
                f"{r.single_s:.1f} s, {r.equal_rows}/{r.n} equal "
                f"({time.perf_counter() - started:.0f} s so far)",
                flush=True,
            )
    print()
    print(tables(results))
    import transformers

    foreign = sorted(m for m in ("lmms_eval", "vllm") if m in sys.modules)
    print(
        f"\nimports: torch {torch.__version__}, transformers {transformers.__version__}, PIL, numpy "
        "and the repo; "
        f"lmms_eval/vllm imported: {', '.join(foreign) or 'none'}"
    )
    failures = [
        f"{r.family}: visual tokens {r.tokens_one_image} (one image), {r.tokens_two_images} (two) "
        f"!= {r.expected_per_image} per image"
        for r in results
        if r.token_status == "MISMATCH"
    ]
    failures += [f"{r.family}: answers not all {r.new_tokens} tokens" for r in results if not r.fixed_length]
    if require_equal:
        failures += [
            f"{r.family}: {r.n - r.equal_rows} batched answers differ" for r in results if r.equal_rows != r.n
        ]
    failures += [f"{name}: skipped, --budget-s {a.budget_s:.0f} spent" for name in skipped]
    failures += broken
    failures += [f"{m} was imported: the GPU machine has none" for m in foreign]
    if a.json:
        payload = {
            "results": [{**asdict(r), "token_status": r.token_status} for r in results],
            "skipped": skipped,
            "failures": failures,
            "total_s": time.perf_counter() - started,
        }
        Path(a.json).write_text(json.dumps(payload, indent=2))
    total = time.perf_counter() - started
    if failures:
        print(f"gpu_check: FAILED in {total:.0f} s: " + "; ".join(failures))
        return 1
    equal = (
        "every batched answer equals its one-at-a-time answer"
        if all(r.equal_rows == r.n for r in results)
        else "batched answers differing from one-at-a-time are reported above (bf16 rounding)"
    )
    print(
        f"gpu_check: OK in {total:.0f} s: visual tokens as the reference (or a listed deviation), "
        f"fixed-length outputs, {equal}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
