"""Generation parameters, failure isolation, images, and vLLM request building (no vllm needed)."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Sequence

import pytest
from PIL import Image

from mis_eval.core.samples import split_response
from model_adapters.backend_vllm import engine_args, import_vllm, prompt_input, sampling_args
from model_adapters.batching import GenRequest, isolate, longest_first
from model_adapters.families import get_family
from model_adapters.media import load_images, to_data_url
from model_adapters.params import GenParams
from tests.adapters_support import image

MIS_KWARGS = {"max_new_tokens": 1024, "temperature": 0, "do_sample": False, "until": []}


def test_task_generation_kwargs_become_greedy_params_without_stop_strings() -> None:
    p = GenParams.from_task(MIS_KWARGS)
    assert p == GenParams(max_new_tokens=1024, temperature=0.0, top_p=1.0, stop=())
    assert p.greedy
    # a model arg overrides the task's budget (DeepSeek-VL2 reference: 512)
    assert GenParams.from_task(MIS_KWARGS, max_new_tokens=512).max_new_tokens == 512
    assert GenParams.from_task({"until": "\n\n", "max_new_tokens": 5}).stop == ("\n\n",)
    assert GenParams.from_task({}).max_new_tokens == 1024
    # do_sample=False is greedy whatever the temperature; a bare temperature samples
    assert GenParams.from_task({"temperature": 0.7, "do_sample": False}).greedy
    sampled = GenParams.from_task({"temperature": 0.7, "top_p": 0.9})
    assert not sampled.greedy and sampled.top_p == 0.9


def test_truncate_cuts_at_the_first_stop_string_only_when_asked() -> None:
    assert GenParams(8, stop=("###", "\n\n")).truncate("a\n\nb###c") == "a"
    assert GenParams(8).truncate("a\n\nb") == "a\n\nb"


def _req(key: str, prompt: str = "p") -> GenRequest:
    return GenRequest(key=key, prompt=prompt, images=[], params=GenParams(8))


def test_isolate_marks_only_the_failing_request() -> None:
    calls: list[int] = []

    def run(batch: Sequence[GenRequest]) -> list[str]:
        calls.append(len(batch))
        if any(r.key == "bad" for r in batch):
            raise ValueError("prompt is longer than the context")
        return [f"ok {r.key}" for r in batch]

    batch = [_req("a"), _req("b"), _req("bad"), _req("c")]
    out = isolate(batch, run)
    assert out[0] == "ok a" and out[1] == "ok b" and out[3] == "ok c"
    response, error = split_response(out[2])
    assert response is None and error is not None
    assert "bad" in error and "longer than the context" in error
    assert calls[0] == 4  # one batched call first


def test_isolate_raises_when_a_whole_batch_fails_the_same_way() -> None:
    def broken(batch: Sequence[GenRequest]) -> list[str]:
        raise RuntimeError("CUDA error: device-side assert")

    with pytest.raises(RuntimeError, match="all 3 requests of a batch failed"):
        isolate([_req("a"), _req("b"), _req("c")], broken)


def test_longest_first_orders_by_context_length() -> None:
    assert longest_first(["ab", "abcd", "a"]) == [1, 0, 2]


def test_images_load_in_order_as_rgb(tmp_path) -> None:
    path = tmp_path / "x.png"
    Image.new("L", (5, 4), 128).save(path)
    buf = io.BytesIO()
    Image.new("RGBA", (3, 3)).save(buf, format="PNG")
    imgs = load_images([str(path), {"bytes": buf.getvalue()}, image(7, 2, (1, 2, 3))])
    assert [i.size for i in imgs] == [(5, 4), (3, 3), (7, 2)]
    assert all(i.mode == "RGB" for i in imgs)
    with pytest.raises(TypeError, match="visual 1 is a int"):
        load_images([3])
    assert to_data_url(imgs[2]).startswith("data:image/png;base64,iVBOR")
    assert to_data_url(imgs[2], "jpeg").startswith("data:image/jpeg;base64,/9j/")


def test_vllm_engine_args_follow_the_model_args() -> None:
    qwen = get_family("qwen2_vl")
    args = engine_args(
        qwen,
        "Qwen/Qwen2-VL-72B-Instruct",
        max_images=2,
        tensor_parallel_size=4,
        max_model_len=16384,
        dtype="bfloat16",
        gpu_memory_utilization=0.85,
        extra={"enforce_eager": True},
    )
    assert args["limit_mm_per_prompt"] == {"image": 2}
    assert args["tensor_parallel_size"] == 4 and args["max_model_len"] == 16384
    assert args["dtype"] == "bfloat16" and args["gpu_memory_utilization"] == 0.85
    # qwen_vl_utils defaults, which the reference resized with before vLLM (not its processor bounds)
    assert args["mm_processor_kwargs"] == {"min_pixels": 4 * 28 * 28, "max_pixels": 16384 * 28 * 28}
    assert args["enforce_eager"] is True and "distributed_executor_backend" not in args
    ds = engine_args(get_family("deepseek_vl2"), "deepseek-ai/deepseek-vl2", max_images=3)
    assert ds["hf_overrides"] == {"architectures": ["DeepseekVLV2ForCausalLM"]}
    assert "max_model_len" not in ds and "mm_processor_kwargs" not in ds
    # under accelerate launch / torchrun each process is one rank of a replica
    dp = engine_args(qwen, "m", max_images=2, tensor_parallel_size=2, world_size=8)
    assert dp["distributed_executor_backend"] == "external_launcher" and dp["data_parallel_size"] == 4
    with pytest.raises(ValueError, match="cannot form replicas"):
        engine_args(qwen, "m", max_images=2, tensor_parallel_size=3, world_size=8)


def test_vllm_requests_carry_the_prompt_images_in_order_and_greedy_params() -> None:
    imgs = [image(10, 10, (255, 0, 0)), image(20, 10, (0, 255, 0)), image(30, 10, (0, 0, 255))]
    req = GenRequest(
        key="k", prompt="<image><image><image>q", images=imgs, params=GenParams.from_task(MIS_KWARGS)
    )
    item = prompt_input(req)
    assert item["prompt"] == "<image><image><image>q"
    assert [i.size for i in item["multi_modal_data"]["image"]] == [(10, 10), (20, 10), (30, 10)]
    assert sampling_args(req.params) == {"max_tokens": 1024, "temperature": 0.0}
    assert sampling_args(GenParams(16, temperature=0.7, top_p=0.9, stop=("##",)), [7, 9]) == {
        "max_tokens": 16,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["##"],
        "stop_token_ids": [7, 9],
    }
    text_only = GenRequest(key="k", prompt="q", images=[], params=req.params)
    assert "multi_modal_data" not in prompt_input(text_only)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_backend_without_vllm_says_how_to_get_it() -> None:
    with pytest.raises(ImportError, match=r"pip install 'mis-eval\[vllm\]'.*backend=hf"):
        import_vllm()


def test_task_system_prompt_and_repetition_penalty_are_task_data() -> None:
    """MIR-SafetyBench's generation_kwargs: system turn, repetition_penalty (qwen2_5_VL_3B.py L102, L154)."""
    mir = GenParams.from_task(
        {"max_new_tokens": 4096, "temperature": 0, "do_sample": False, "until": []}
        | {"repetition_penalty": 1.05, "system_prompt": "You are a helpful assistant."}
    )
    assert (mir.repetition_penalty, mir.system, mir.greedy) == (1.05, "You are a helpful assistant.", True)
    assert sampling_args(mir)["repetition_penalty"] == 1.05
    plain = GenParams.from_task({"max_new_tokens": 8})
    assert (plain.repetition_penalty, plain.system) == (
        1.0,
        None,
    ) and "repetition_penalty" not in sampling_args(plain)
    # what response caches key on is unchanged for tasks without the new settings
    assert plain.body() == {"max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0, "stop": ()}
    assert mir.body()["repetition_penalty"] == 1.05 and mir.body()["system"] == "You are a helpful assistant."


def test_openai_adapter_sends_the_system_turn_and_the_penalty_where_the_api_takes_it() -> None:
    from model_adapters.openai_api import MisOpenAI
    from tests.adapters_support import instances

    gen = {
        "max_new_tokens": 16,
        "temperature": 0,
        "until": [],
        "repetition_penalty": 1.05,
        "system_prompt": "S.",
    }
    (req,), task_dict = instances([{"question": "Q?", "images": [image(8, 8, (1, 2, 3))]}], gen)
    from model_adapters.batching import TaskRequest

    treq = TaskRequest.from_instance(req)
    doc = task_dict["t"]["test"][0]
    local = MisOpenAI(model="m", base_url="http://127.0.0.1:8000/v1")._body(treq, doc)
    assert (
        local["messages"][0] == {"role": "system", "content": "S."} and local["messages"][1]["role"] == "user"
    )
    assert local["repetition_penalty"] == 1.05
    openai = MisOpenAI(model="gpt-4o", api_key="sk-x")._body(treq, doc)  # api.openai.com has no such field
    assert "repetition_penalty" not in openai and openai["messages"][0]["role"] == "system"
