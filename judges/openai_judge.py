"""Judges behind the OpenAI chat API: GPT-4o ("gpt4o"), any OpenAI model ("openai") and any
OpenAI-compatible server such as `vllm serve <model>` ("local").

Async client with the SDK's own retries off; tenacity retries transient failures (429, 5xx,
timeouts, broken bodies) with exponential backoff, or exactly the server's Retry-After when given.
Concurrency is bounded by a semaphore; optional aiolimiter limits cap requests and tokens per
minute. The API key is read from an environment variable only (never an option, so it cannot
land in a command line or a run record) and is redacted from every stored message, reply and error.
The server is not trusted (mis_eval/core/http_guard.py): `timeout` bounds a whole attempt, a reply
is read at most `max_reply_bytes` far, and no redirect is followed.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
from typing import Any

import openai
from aiolimiter import AsyncLimiter
from openai.types.chat import ChatCompletion
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from judges.accounting import price_for
from judges.base import JudgeRequest
from judges.cache import CachedReply
from judges.engine import DEFAULT_LEASE_S, BatchJudge, JudgeCallError, JudgeSetupError, Prepared, Reply
from judges.prompting import chat_messages, decoding, json_schema_format
from judges.registry import register_judge
from judges.rubric import Rubric
from mis_eval.core.http_guard import (
    JUDGE_MAX_REPLY_BYTES,
    HostileReply,
    RedirectRefused,
    deadline,
    guarded_client_options,
)
from mis_eval.core.http_retry import retry_after
from mis_eval.core.secrets import public_url, url_secrets

GPT4O_MODEL = "gpt-4o-2024-08-06"  # pinned snapshot: "gpt-4o" (the paper's id) is a moving alias
OPENAI_BASE_URL = "https://api.openai.com/v1"
_TRANSIENT_STATUS = {408, 409, 429}


class _Malformed(Exception):
    """HTTP 200 whose body is not a usable chat completion."""


class _NotSent(Exception):
    """An earlier call of this batch failed in a way no request can get past (bad key, bad URL)."""


# Statuses no retry can fix, for this request or any other of the batch: bad key, no access,
# unknown model or endpoint. The first one stops the batch (the rest fail unsent, uncached).
_FATAL_STATUS = {401, 403, 404}
_BAD_URL_ERRORS = ("InvalidURL", "InvalidUrlClientError", "UnsupportedProtocol", "LocalProtocolError")


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first (the SDK wraps transport errors twice)."""
    out: list[BaseException] = []
    while exc is not None and exc not in out and len(out) < 10:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return out


def describe_failure(exc: BaseException, timeout: float) -> tuple[str, bool]:
    """(precise cause in words, whether another attempt can succeed) for a failed call.

    The aiohttp transport reports every failed connect as a *timeout*; the root cause below it
    says what happened (connection refused, unknown host, invalid URL, a real timeout).
    """
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return f"HTTP {status}: {exc.message}", status in _TRANSIENT_STATUS or status >= 500
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, HostileReply):  # a redirect or an oversized reply: asking again gets the same
            return str(e), False
    names = {type(e).__name__ for e in chain}
    if names & set(_BAD_URL_ERRORS):
        return f"invalid URL ({chain[-1]})", False
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused (is the server running at that host and port?)", True
        if isinstance(e, socket.gaierror):
            return f"host name not found ({e.strerror or e})", True
        if isinstance(
            e, ConnectionError | _Malformed | json.JSONDecodeError | openai.APIResponseValidationError
        ):
            return f"{type(e).__name__}: {e}", True
    if any(isinstance(e, TimeoutError) for e in chain) or isinstance(exc, openai.APITimeoutError):
        return f"timed out after {timeout:g} s", True
    if isinstance(exc, openai.APIConnectionError):
        return f"connection error ({chain[-1]!r})", True
    return f"{type(exc).__name__}: {exc}", False  # a bug or a bad request: asking again cannot help


def _retryable(exc: BaseException) -> bool:
    return describe_failure(exc, 0)[1]


def _fatal(exc: BaseException) -> bool:
    """True where no other request of this batch can succeed either."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _FATAL_STATUS
    chain = _chain(exc)  # a redirect moves the endpoint itself: no request of the batch is sent there
    return any(type(e).__name__ in _BAD_URL_ERRORS or isinstance(e, RedirectRefused) for e in chain)


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait, from the failed response's headers."""
    return retry_after(getattr(getattr(exc, "response", None), "headers", None))


def _tokens(value: Any) -> int | None:
    """A token count as reported, or None where it is no count (NaN, Infinity, negative, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return int(value)


def _http_client(timeout: float, max_reply_bytes: int) -> Any:
    """The SDK's aiohttp transport where installed (its documented choice for high concurrency),
    guarded against the server (no redirects, bounded replies)."""
    guard = guarded_client_options(max_reply_bytes)
    try:
        return openai.DefaultAioHttpClient(timeout=timeout, **guard)
    except RuntimeError:  # SDK installed without the aiohttp extra
        return openai.DefaultAsyncHttpxClient(timeout=timeout, **guard)


class OpenAIJudge(BatchJudge):
    provider = "openai"
    # The API route and its response type: chat completions here, `/completions` for raw-prompt
    # classifiers (judges.harmbench), with the same retries, failure signals and accounting.
    endpoint = "/chat/completions"
    response_type: Any = ChatCompletion
    default_model: str | None = None
    default_key_env = "OPENAI_API_KEY"
    key_required = True

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 16,
        timeout: float = 60.0,
        max_reply_bytes: int = JUDGE_MAX_REPLY_BYTES,
        max_retries: int = 4,
        backoff: float = 0.5,
        backoff_max: float = 60.0,
        rpm: int | None = None,
        tpm: int | None = None,
        structured: bool = True,
        cache: str | bool | None = None,
        hardened: bool = False,
        delimit: bool | None = None,
        retry_unparseable: bool = False,
        lease: float = DEFAULT_LEASE_S,
        price_in: float | None = None,
        price_out: float | None = None,
        **unknown: Any,
    ) -> None:
        if "api_key" in unknown:
            raise ValueError(
                "judge option api_key is refused (it would be logged); set api_key_env=ENV_VAR_NAME"
            )
        if unknown:
            raise ValueError(f"unknown {self.name} judge option(s): {', '.join(sorted(unknown))}")
        model = model or self.default_model
        if model is None and self.provider == "openai":
            raise ValueError(f"judge {self.name!r} needs model=<id>")
        if concurrency < 1 or max_retries < 0 or timeout <= 0 or int(max_reply_bytes) < 1:
            raise ValueError(
                "judge options need concurrency >= 1, max_retries >= 0, timeout > 0, max_reply_bytes >= 1"
            )
        self.base_url = public_url(base_url or OPENAI_BASE_URL)
        self._base_url_full = base_url or OPENAI_BASE_URL
        self.key_env = api_key_env or self.default_key_env
        self._api_key = os.environ.get(self.key_env) or None
        self.max_reply_bytes = int(max_reply_bytes)
        if self._api_key is None and self.key_required:
            raise ValueError(f"judge {self.name!r} needs an API key in ${self.key_env}")
        self.concurrency, self.timeout, self.max_retries = int(concurrency), float(timeout), int(max_retries)
        self.backoff, self.backoff_max = float(backoff), float(backoff_max)
        self._backoff_wait = wait_exponential_jitter(
            multiplier=self.backoff, max=self.backoff_max, jitter=self.backoff
        )
        self.rpm, self.tpm, self.structured = rpm, tpm, bool(structured)
        super().__init__(
            model=model,
            cache=cache,
            hardened=hardened if delimit is None else bool(delimit),  # `delimit`: the option's old name
            retry_unparseable=retry_unparseable,
            lease=lease,
        )
        override = (
            (float(price_in), float(price_out)) if price_in is not None and price_out is not None else None
        )
        self.acct.price = price_for(model, override) if self.provider == "openai" or override else None
        self._client: openai.AsyncOpenAI | None = None
        self._sem: asyncio.Semaphore | None = None
        self._rpm: AsyncLimiter | None = None
        self._tpm: AsyncLimiter | None = None
        self._fatal_error: str | None = None  # set by a call no retry can fix: the rest are not sent

    def supports(self, rubric: Rubric) -> bool:
        return True

    def _claim_window(self) -> tuple[int, int]:
        # twice the connections: the semaphore stays full while some items wait out a backoff
        return max(2 * self.concurrency, 8), max(self.concurrency // 4, 1)

    def _own_secrets(self) -> list[str]:
        key = self._api_key
        return ([key] if key and len(key) >= 4 else []) + url_secrets(self._base_url_full)

    def _cache_parts(self, request: JudgeRequest) -> dict[str, Any]:
        fmt = request.rubric.response_format if self.structured else None
        # The endpoint is not part of the key: the served model id names the judge (a restarted local
        # server on another port answers the same way).
        return {"judge_model": self.model, "provider": self.provider, "format": fmt}

    async def _open(self) -> None:
        self._client = openai.AsyncOpenAI(
            api_key=self._api_key or "EMPTY",
            base_url=self._base_url_full,
            max_retries=0,
            timeout=self.timeout,
            http_client=_http_client(self.timeout, self.max_reply_bytes),
        )
        self._sem = asyncio.Semaphore(self.concurrency)
        self._rpm = AsyncLimiter(self.rpm, 60) if self.rpm else None
        self._tpm = AsyncLimiter(self.tpm, 60) if self.tpm else None
        self._fatal_error = None
        if self.model is None:  # local server: use the model it serves
            self.model = await self._served_model()
            self.acct.judge, self.acct.model = self.id, self.model

    async def _served_model(self) -> str:
        assert self._client is not None
        try:
            async with deadline(self.timeout):
                models = await self._client.models.list()
        except (openai.OpenAIError, HostileReply, TimeoutError) as e:
            why = describe_failure(e, self.timeout)[0]
            raise JudgeSetupError(
                self.redact(
                    f"judge {self.name!r}: cannot list models at {self.base_url}: {why}; "
                    "check base_url, or pass model=<id>"
                )
            ) from None
        if not models.data:
            raise JudgeSetupError(f"judge {self.name!r}: {self.base_url} serves no model; pass model=<id>")
        return models.data[0].id

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        honored = retry_after_seconds(exc)
        if honored is not None:
            return min(honored, self.backoff_max)
        return float(self._backoff_wait(state))

    def _request_args(self, item: Prepared) -> dict[str, Any]:
        """The chat-completions request body (plain JSON, as the API documents it)."""
        rubric = item.request.rubric
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat_messages(item.request, item.prompt),
            "max_tokens": rubric.max_tokens,
        }
        body |= decoding(rubric) | dict(rubric.request_extra)
        if self.structured and rubric.response_format:
            body["response_format"] = json_schema_format(rubric.name, rubric.response_format)
        return body

    async def _complete(self, item: Prepared) -> Reply:
        assert self._client is not None and self._sem is not None
        client, sem, calls = self._client, self._sem, 0
        args: dict[str, Any] | None = None
        est = len(item.prompt) // 4 + 800 * len(item.request.images) + item.request.rubric.max_tokens
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    # A slot is held per attempt, not across a backoff sleep: a request waiting out
                    # a Retry-After does not idle one of the `concurrency` connections.
                    async with sem:
                        if self._fatal_error is not None:  # checked in the slot: queued items stop too
                            raise _NotSent(f"not sent: an earlier call failed for good ({self._fatal_error})")
                        if args is None:  # built inside the slot: at most `concurrency` payloads in memory
                            args = self._request_args(item)
                        if self._rpm:
                            await self._rpm.acquire()
                        if self._tpm:
                            await self._tpm.acquire(min(est, self._tpm.max_rate))
                        calls += 1
                        # The SDK's generic `post` (same client, auth, timeouts and errors as
                        # `chat.completions.create`) skips its type-driven transform of params,
                        # ~1 ms of CPU per image-bearing call: the bottleneck at hundreds of calls
                        # per second on a small machine. The body is already plain API JSON.
                        # `timeout` is the whole attempt's: a reply dripped out byte by byte ends too.
                        async with deadline(self.timeout):
                            resp = await client.post(self.endpoint, body=args, cast_to=self.response_type)
                    if not getattr(resp, "choices", None):
                        raise _Malformed("completion without choices")
                    content = self._content(resp)
                    if content is not None and not isinstance(content, str):
                        raise _Malformed(
                            f"message content is not text ({type(content).__name__} {content!r})"
                        )
        except _NotSent as e:
            raise JudgeCallError(str(e), calls=calls, retries=max(calls - 1, 0)) from None
        except Exception as e:
            why, _ = describe_failure(e, self.timeout)
            if (
                isinstance(e, openai.APIStatusError)
                and e.status_code == 400
                and "response_format" in (args or {})
            ):
                why += " (if this server lacks structured output, pass judge option structured=false)"
            if _fatal(e):
                self._fatal_error = why
            why = f"judge call failed after {calls} call(s): {why}"
            raise JudgeCallError(why, calls=calls, retries=max(calls - 1, 0)) from None
        return self._reply(resp, calls)

    def _content(self, resp: Any) -> Any:
        """The reply's text field as the server sent it (checked to be text, or None, per attempt)."""
        return resp.choices[0].message.content

    def _cached_reply(self, resp: Any, text: str) -> CachedReply:
        """`text` with the reply's served model and token counts (NaN, Infinity, ...: unknown, counted
        as 0 and noted in `invalid_usage`)."""
        usage = resp.usage
        counts = [_tokens(getattr(usage, k, 0)) for k in ("prompt_tokens", "completion_tokens")]
        if usage is not None and None in counts:
            self.acct.invalid_usage += 1
        served = getattr(resp, "model", None)
        return CachedReply(
            raw=text,
            served_model=served if isinstance(served, str) else None,
            prompt_tokens=counts[0] or 0,
            completion_tokens=counts[1] or 0,
        )

    def _reply(self, resp: Any, calls: int) -> Reply:
        """The judge's text out of a chat completion; a refusal or no content is a failed call."""
        msg = resp.choices[0].message
        reply = self._cached_reply(resp, msg.content or "")
        if getattr(msg, "refusal", None) or msg.content is None:
            self.acct.prompt_tokens += reply.prompt_tokens  # refused calls are still billed
            self.acct.completion_tokens += reply.completion_tokens
            raise JudgeCallError(
                f"judge refused: {msg.refusal or 'empty content'}",
                calls=calls,
                retries=calls - 1,
                raw=getattr(msg, "refusal", None) or "",
            )
        return Reply(reply, calls=calls, retries=calls - 1)

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "base_url": self.base_url,
            "api_key_env": self.key_env,
            "concurrency": self.concurrency,
            "timeout_s": self.timeout,
            "max_reply_bytes": self.max_reply_bytes,
            "max_retries": self.max_retries,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "structured_output": self.structured,
        }


@register_judge("openai")
class GenericOpenAIJudge(OpenAIJudge):
    """Any OpenAI model by id: `--judge openai --judge-options model=gpt-4.1-2025-04-14`."""

    def approximation(self) -> str | None:
        return None if self.model == GPT4O_MODEL else f"judge {self.model} instead of the paper's GPT-4o"


@register_judge("gpt4o")
class GPT4oJudge(GenericOpenAIJudge):
    """The MIS paper's judge, pinned to a dated GPT-4o snapshot."""

    default_model = GPT4O_MODEL


@register_judge("local")
class LocalJudge(OpenAIJudge):
    """Any OpenAI-compatible server by base URL (`vllm serve <model>`); the key is optional."""

    provider = "openai-compatible"
    default_key_env = "LOCAL_JUDGE_API_KEY"
    key_required = False

    def __init__(self, model: str | None = None, *, base_url: str | None = None, **options: Any) -> None:
        if not base_url:
            raise ValueError("judge 'local' needs base_url=http://host:port/v1")
        super().__init__(model, base_url=base_url, **options)

    def approximation(self) -> str | None:
        return f"local judge {self.model} at {self.base_url} instead of the paper's GPT-4o"
