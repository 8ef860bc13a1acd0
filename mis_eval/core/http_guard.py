"""What an HTTP client of ours accepts from a server it does not control (judges, API models).

A server may be hostile or broken: it may redirect a POST elsewhere (with the prompts and the
key), send a reply of any size, or drip it out a byte at a time. The openai SDK's HTTP client
follows redirects, reads any body in full and times out per read, not per call. Here:

* `guarded_client_options(max_reply_bytes)` are keyword arguments for the SDK's HTTP client
  (httpx2 / httpx `AsyncClient`, aiohttp transport or not): no redirect is followed (any 3xx is
  `RedirectRefused`, naming the status and where it pointed, without credentials or query), and
  a reply body is read at most `max_reply_bytes` far (`ReplyTooLarge`): a declared
  Content-Length over the cap is refused unread, a chunked body is cut where it passes the cap,
  and a gzip/deflate body is decompressed under the same cap (a small bomb cannot expand).
* `deadline(seconds)` bounds one whole attempt (connect, headers and body together); past it the
  attempt fails with `DeadlineExceeded` ("timed out after N s").

Refused replies are `HostileReply` errors: never retried (asking again gets the same), never cached.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mis_eval.core.secrets import public_url

JUDGE_MAX_REPLY_BYTES = 1024**2  # a verdict is a few hundred bytes; 1 MiB is far above any real one
MODEL_MAX_REPLY_BYTES = 16 * 1024**2  # an answer of 1k tokens is a few KiB; long reasoning a few 100 KiB
_DECODED = {"gzip", "x-gzip", "deflate"}  # encodings decoded here, under the cap
_ACCEPT_ENCODING = "gzip, deflate"  # asked for: a compliant server sends nothing we cannot bound


class HostileReply(Exception):
    """A reply refused unread or cut off: a redirect, or more bytes than the cap. Not retried."""


class RedirectRefused(HostileReply):
    def __init__(self, status: int, location: str | None) -> None:
        where = f"to {public_url(location)}" if location else "without a Location"
        super().__init__(f"HTTP {status}: redirect {where} refused (mis-eval follows no redirect)")
        self.status = status


class ReplyTooLarge(HostileReply):
    def __init__(self, cap: int, declared: int | None = None) -> None:
        what = f"declares {declared} bytes" if declared is not None else "is longer"
        super().__init__(
            f"reply {what}, over the cap of {cap} bytes (option max_reply_bytes); not read further"
        )


class DeadlineExceeded(TimeoutError):
    """One attempt (connect + headers + body) ran past its total deadline."""


@asynccontextmanager
async def deadline(seconds: float) -> AsyncIterator[None]:
    """Fail the enclosed attempt with DeadlineExceeded once `seconds` have passed, whatever it waits on."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as e:
        raise DeadlineExceeded(f"timed out after {seconds:g} s") from e


def guarded_client_options(max_reply_bytes: int) -> dict[str, Any]:
    """Keyword arguments for the SDK's async HTTP client (see the module docstring)."""
    if max_reply_bytes < 1:
        raise ValueError("max_reply_bytes must be >= 1")

    async def ask_bounded(request: Any) -> None:
        request.headers["Accept-Encoding"] = _ACCEPT_ENCODING

    async def check(response: Any) -> None:
        if 300 <= response.status_code < 400:
            raise RedirectRefused(response.status_code, response.headers.get("location"))
        declared = response.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > max_reply_bytes:
            raise ReplyTooLarge(max_reply_bytes, int(declared))
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in _DECODED | {"identity", ""}:
            raise HostileReply(f"reply in Content-Encoding {encoding!r}, which was not asked for")
        decoder = None
        if encoding in _DECODED:
            decoder = zlib.decompressobj(47)  # 32 + 15: a gzip or zlib header, whichever it has
            del response.headers["content-encoding"]  # decoded here, under the cap
        response.stream = _capped_stream(response, max_reply_bytes, decoder)

    return {"follow_redirects": False, "event_hooks": {"request": [ask_bounded], "response": [check]}}


def _capped_stream(response: Any, cap: int, decoder: Any) -> Any:
    """The response's body stream, yielding at most `cap` (decoded) bytes, then ReplyTooLarge."""
    # The stream type of the library that made the response (httpx2 for openai >= 3, else httpx).
    return _capped_type(type(response).__module__.partition(".")[0])(response.stream, cap, decoder)


@functools.cache
def _capped_type(http_module: str) -> type:
    base = importlib.import_module(http_module).AsyncByteStream

    class Capped(base):  # type: ignore[valid-type,misc]
        def __init__(self, inner: Any, cap: int, decoder: Any) -> None:
            self.inner, self.cap, self.decoder = inner, cap, decoder

        async def __aiter__(self) -> AsyncIterator[bytes]:
            cap, decoder = self.cap, self.decoder
            wire = decoded = 0
            async for chunk in self.inner:
                wire += len(chunk)
                if wire > cap:
                    raise ReplyTooLarge(cap)
                if decoder is not None:
                    try:
                        chunk = decoder.decompress(chunk, cap - decoded + 1)
                    except zlib.error as e:
                        raise HostileReply(f"reply body does not decompress ({e})") from None
                    if decoder.unconsumed_tail:
                        raise ReplyTooLarge(cap)
                decoded += len(chunk)
                if decoded > cap:
                    raise ReplyTooLarge(cap)
                yield chunk
            if decoder is not None and (rest := decoder.flush()):
                if decoded + len(rest) > cap:
                    raise ReplyTooLarge(cap)
                yield rest

        async def aclose(self) -> None:
            await self.inner.aclose()

    return Capped
