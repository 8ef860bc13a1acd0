"""Bounded-concurrency chat completions against any OpenAI-compatible endpoint, with honest failures.

Retries follow the server: a 429/5xx/timeout waits `Retry-After` (or `retry-after-ms`) when the
server sends one, exponential backoff otherwise; an error that retrying cannot fix (400, 401,
403, 404, 422, a redirect, a reply over the size cap) fails at once. A request that finally fails
yields a `Failure`, never text, and its reason never contains the API key.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from mis_eval.core.http_guard import HostileReply
from mis_eval.core.http_retry import retry_after

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})  # and every 5xx


@dataclass(frozen=True)
class Failure:
    reason: str
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6  # retries after the first attempt
    backoff: float = 1.0  # first wait without Retry-After; doubles each retry, with jitter
    max_wait: float = 60.0  # cap on one wait, Retry-After included


def redact(text: str, secret: str | None) -> str:
    """The text without the API key, a bearer token or anything shaped like an sk- key."""
    if secret:
        text = text.replace(secret, "[redacted]")
    text = re.sub(r"(?i)(bearer\s+)\S+", r"\1[redacted]", text)
    return re.sub(r"sk-[A-Za-z0-9_\-*.]{4,}", "[redacted]", text)


def classify(exc: BaseException) -> tuple[bool, float | None, str]:
    """(retryable, server-requested wait, description) of one failed attempt."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in RETRYABLE_STATUS or status >= 500
        return retryable, retry_after(exc.response.headers), f"HTTP {status}: {exc.message}"
    if isinstance(exc, HostileReply):  # a redirect, an oversized reply: asking again gets the same
        return False, None, str(exc)
    if isinstance(exc, TimeoutError):  # the attempt's total deadline (http_guard.deadline)
        return True, None, str(exc)
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return True, None, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, EmptyResponse):
        return False, None, str(exc)
    # malformed JSON and similar: a broken answer from a server that may answer fine next time
    return True, None, f"{type(exc).__name__}: {exc}"


class EmptyResponse(RuntimeError):
    """The endpoint answered but produced no text (e.g. its content filter blocked the output)."""


class MalformedAnswer(ValueError):
    """HTTP 200 whose body is no usable answer (content that is not text: NaN, a number, ...)."""


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    secret: str | None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T | Failure:
    for attempt in range(policy.max_retries + 1):
        try:
            return await call()
        except Exception as exc:  # noqa: BLE001 - classified below; nothing escapes as text
            retryable, wait, what = classify(exc)
            if not retryable or attempt == policy.max_retries:
                reason = f"{what} (after {attempt + 1} attempt{'s' if attempt else ''})"
                return Failure(redact(reason, secret), attempt + 1)
            if wait is None:
                wait = policy.backoff * 2**attempt * (0.5 + random.random())
            await sleep(min(wait, policy.max_wait))
    raise AssertionError("unreachable")


async def bounded(
    jobs: Sequence[Callable[[], Awaitable[T]]], limit: int, on_done: Callable[[], None] | None = None
) -> list[T]:
    """Run the jobs with at most `limit` in flight; results in job order."""
    sem = asyncio.Semaphore(max(1, limit))

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            result = await job()
        if on_done:
            on_done()
        return result

    return list(await asyncio.gather(*(one(j) for j in jobs)))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also from inside a running event loop (notebooks): then on a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
