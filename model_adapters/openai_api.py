"""`--model mis_openai`: GPT-4o, Gemini's OpenAI-compatible endpoint, a local `vllm serve`, ...

    --model mis_openai --model_args model=gpt-4o
    --model mis_openai --model_args model=gemini-1.5-pro,api_key_env=GEMINI_API_KEY,
        base_url=https://generativelanguage.googleapis.com/v1beta/openai/
    --model mis_openai --model_args model=Qwen/Qwen2-VL-7B-Instruct,base_url=http://127.0.0.1:8000/v1

Images go first, as base64 data URLs, then the question (the MIS layout); a task's
`system_prompt` is a system message before it, and its `repetition_penalty` is sent to
OpenAI-compatible servers that take it (vLLM, SGLang), never to api.openai.com (the API has no
such parameter: dropped, with a warning). A request that
finally fails returns `mark_failed(reason)`, which the judge step reports as ERROR; it is
never written as response text. `cache=PATH` keeps successful answers so a re-run only
sends what is missing (failures are always retried).

The server is not trusted (mis_eval/core/http_guard.py): `timeout` bounds a whole attempt, an
answer is read at most `max_reply_bytes` far, no redirect is followed, and the run's secrets
(the key, credentials in `base_url`) are masked in answers and errors before anyone stores them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from lmms_eval.api.model import lmms
from tqdm import tqdm

from mis_eval.core.http_guard import MODEL_MAX_REPLY_BYTES, deadline, guarded_client_options
from mis_eval.core.samples import mark_failed
from mis_eval.core.secrets import Scrubber, env_secrets, public_url, url_secrets
from model_adapters.api_client import (
    EmptyResponse,
    Failure,
    MalformedAnswer,
    RetryPolicy,
    bounded,
    run_sync,
    with_retries,
)
from model_adapters.batching import TaskRequest
from model_adapters.media import load_images, to_data_url
from model_adapters.params import GenParams
from model_adapters.response_cache import ResponseCache

log = logging.getLogger(__name__)
OPENAI_URL = "https://api.openai.com/v1"


def build_messages(
    question: str,
    data_urls: list[str],
    detail: str | None = None,
    text_first: bool = False,
    system: str | None = None,
) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": url, **({"detail": detail} if detail else {})}}
        for url in data_urls
    ]
    text = {"type": "text", "text": question}
    head = [{"role": "system", "content": system}] if system is not None else []
    return [*head, {"role": "user", "content": [text, *images] if text_first else [*images, text]}]


def request_body(
    model: str, messages: list[dict[str, Any]], params: GenParams, max_tokens_param: str = "max_tokens"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        max_tokens_param: params.max_new_tokens,
        "temperature": params.temperature,
    }
    if not params.greedy:
        body["top_p"] = params.top_p
    if params.stop:
        body["stop"] = list(params.stop)
    return body


class MisOpenAI(lmms):
    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        api_key: str | None = None,
        num_concurrent: int = 16,
        max_retries: int = 6,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        timeout: float = 120.0,
        max_reply_bytes: int = MODEL_MAX_REPLY_BYTES,
        image_format: str = "png",
        image_detail: str | None = None,
        rpm: float | None = None,
        max_tokens_param: str = "max_tokens",
        text_first: bool = False,
        max_new_tokens: int | None = None,
        cache: str | None = None,
        model_version: str | None = None,
        batch_size: Any = None,
        max_batch_size: Any = None,
        device: Any = None,
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise ValueError(f"unknown model args for mis_openai: {', '.join(sorted(unknown))}")
        self.model = model or model_version
        if not self.model:
            raise ValueError("mis_openai needs model=<name>, e.g. model=gpt-4o")
        self.base_url = str(base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL)
        key = api_key or os.environ.get(api_key_env)
        if not key and self.base_url.startswith(OPENAI_URL):
            raise ValueError(f"no API key: set the environment variable {api_key_env} (or api_key_env=NAME)")
        self._api_key = str(key or "EMPTY")  # local servers (vllm serve) accept any key
        own = [self._api_key] if key and len(key) >= 4 else []
        self._scrub = Scrubber([*env_secrets(), *own, *url_secrets(self.base_url)])
        self.max_reply_bytes = int(max_reply_bytes)
        if self.max_reply_bytes < 1:
            raise ValueError("mis_openai: max_reply_bytes must be >= 1")
        self.policy = RetryPolicy(int(max_retries), float(backoff), float(max_wait))
        self.num_concurrent, self.timeout = int(num_concurrent), float(timeout)
        self.image_format, self.image_detail = str(image_format), image_detail
        self.rpm = float(rpm) if rpm else None
        self.max_tokens_param, self.text_first = str(max_tokens_param), bool(text_first)
        self.max_new_tokens = int(max_new_tokens) if max_new_tokens else None
        self.cache = ResponseCache(cache, namespace=self.base_url) if cache else None
        self._warned_penalty = False

    def __repr__(self) -> str:  # never show the key
        return f"MisOpenAI(model={self.model!r}, base_url={public_url(self.base_url)!r})"

    def generate_until(self, requests: list[Any]) -> list[str]:
        reqs = [TaskRequest.from_instance(r) for r in requests]
        bar = tqdm(total=len(reqs), desc=f"mis_openai {self.model}", disable=self.rank != 0)
        try:
            results = run_sync(self._run_all(reqs, bar.update))
        finally:
            bar.close()
        failed = [r for r in results if isinstance(r, Failure)]
        if failed:
            log.warning(
                "%d of %d requests to %s finally failed; first: %s",
                len(failed),
                len(reqs),
                self.model,
                failed[0].reason,
            )
        return [mark_failed(r.reason) if isinstance(r, Failure) else r for r in results]

    async def _run_all(self, reqs: list[TaskRequest], tick: Any) -> list[str | Failure]:
        import openai

        limiter = None
        if self.rpm:
            from aiolimiter import AsyncLimiter

            limiter = AsyncLimiter(self.rpm, 60)
        http = openai.DefaultAsyncHttpxClient(
            timeout=self.timeout, **guarded_client_options(self.max_reply_bytes)
        )
        async with openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            max_retries=0,
            timeout=self.timeout,
            http_client=http,
        ) as client:
            jobs = [lambda r=r: self._one(client, r, limiter) for r in reqs]
            return await bounded(jobs, self.num_concurrent, on_done=lambda: tick(1))

    async def _one(self, client: Any, req: TaskRequest, limiter: Any) -> str | Failure:
        key = req.key
        try:
            doc = self.task_dict[req.task][req.split][req.doc_id]
            key = req.described(doc)
            body = await asyncio.to_thread(self._body, req, doc)
        except Exception as exc:  # noqa: BLE001 - bad input is recorded per request
            return Failure(f"{key}: cannot build the request: {type(exc).__name__}: {exc}", 0)
        if self.cache is not None and (hit := self.cache.get(body)) is not None:
            return hit

        async def call() -> str:
            if limiter is not None:
                await limiter.acquire()
            async with deadline(self.timeout):  # the whole attempt: a dripped-out answer ends too
                resp = await client.chat.completions.create(**body)
            choice = resp.choices[0]
            content, refusal = choice.message.content, getattr(choice.message, "refusal", None)
            for text in (content, refusal):
                if text is not None and not isinstance(text, str):
                    raise MalformedAnswer(f"answer text is {type(text).__name__} {text!r}, not text")
            if content is not None:
                return self._scrub(content)  # a server may echo the key: never stored, never logged
            if refusal:  # the model's own refusal is its answer
                return self._scrub(refusal)
            raise EmptyResponse(f"no text in the answer (finish_reason={choice.finish_reason})")

        result = await with_retries(call, self.policy, self._api_key)
        if isinstance(result, Failure):
            return Failure(self._scrub(f"{key}: {result.reason}"), result.attempts)
        if self.cache is not None:
            self.cache.put(body, result)
        return result

    def _body(self, req: TaskRequest, doc: Any) -> dict[str, Any]:
        images = load_images(req.doc_to_visual(doc))
        urls = [to_data_url(img, self.image_format) for img in images]
        params = GenParams.from_task(req.gen_kwargs, self.max_new_tokens)
        messages = build_messages(req.context, urls, self.image_detail, self.text_first, params.system)
        body = request_body(str(self.model), messages, params, self.max_tokens_param)
        if params.repetition_penalty != 1.0:
            if self.base_url.startswith(OPENAI_URL):
                if not self._warned_penalty:
                    self._warned_penalty = True
                    log.warning(
                        "%s: repetition_penalty=%g not sent (the OpenAI API has no such parameter)",
                        req.task,
                        params.repetition_penalty,
                    )
            else:  # vLLM / SGLang servers take it as an extra sampling parameter
                body["repetition_penalty"] = params.repetition_penalty
        return body

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError("mis_openai does not support multi-round generation")

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        raise NotImplementedError("mis_openai does not support loglikelihood tasks")
