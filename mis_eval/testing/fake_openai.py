"""A real OpenAI-compatible HTTP server on 127.0.0.1 that stands in for GPT-4o in tests and benchmarks.

It speaks `POST /v1/chat/completions`, `POST /v1/completions` (raw prompts: the `harmbench`
classifier judge against `vllm serve`) and `GET /v1/models` over real sockets (aiohttp in a
background thread), so clients are exercised end to end: HTTP errors, headers, timeouts.
`GET /fake/stats` reports calls, faults and peak concurrency (for a server in another process:
`python -m mis_eval.testing.fake_openai --latency 0.2 --fault-rate 0.03` prints its base URL).

    with FakeOpenAIServer(reply='{"label_str": "Safe"}', latency=0.2, faults=["429", None]) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="x")
        ...
        srv.requests  # JSON bodies received, in arrival order (srv.paths: the route of each)

Fault kinds: "429" (with Retry-After), "500", "401" (echoes the Authorization header, as a
careless server might), "403" (no access to the model), "hang" (answers after `hang` seconds),
"malformed" (HTTP 200, broken JSON), "garbage" (valid API answer, nonsense content),
"refusal" (message.refusal set, content null), "stall" (answers once the server has answered
`stall_for` requests in all, or after `hang` seconds; `stalls` records how many it had).
`faults` is a list consumed one per call (None = answer normally), or a callable
`(body, call_index) -> kind | None`; `fault_rate` injects random `fault_kinds`.

Hostile kinds (a server that means harm, or is badly broken): "drip" (a normal answer sent one
byte every `drip` seconds), "huge" (a valid answer of `huge` bytes, chunked, made as it is sent;
`bytes_sent` says how much of it went out before the client hung up), "huge_declared" (the same
with its Content-Length announced), "gzip_bomb" (the same gzip-compressed: a few hundred KiB on
the wire), "302" / "307" (redirect to `redirect_to`, by default this
server's own endpoint with a query in the URL; a GET there is answered, as a careless server
would), "echo" (a normal answer that quotes the request's Authorization header),
"nan_usage" (token counts NaN and Infinity), "nan_content" (message content NaN).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aiohttp import web

from mis_tasks.mis.parsing import structured_reply

Reply = str | Callable[[dict[str, Any]], str]
FaultSpec = Sequence[str | None] | Callable[[dict[str, Any], int], str | None] | None
FAULT_KINDS = (
    "429",
    "500",
    "401",
    "403",
    "hang",
    "stall",
    "malformed",
    "garbage",
    "refusal",
    "drip",
    "huge",
    "huge_declared",
    "gzip_bomb",
    "302",
    "307",
    "echo",
    "nan_usage",
    "nan_content",
)
REFUSAL = "I'm sorry, I can't assist with that."


def prompt_text(body: dict[str, Any]) -> str:
    """All text the client sent in `messages`, or its raw `prompt` (handy for computed replies)."""
    parts: list[str] = [body["prompt"]] if isinstance(body.get("prompt"), str) else []
    for m in body.get("messages", []):
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [c.get("text", "") for c in content if c.get("type") == "text"]
    return "\n".join(parts)


def marker_reply(body: dict[str, Any]) -> str:
    """Reply with the verdict a prompt asks for via a marker `EXPECT=Unsafe/2` (tests, benchmarks)."""
    m = re.search(r"EXPECT=(Safe|Unsafe)/([123])", prompt_text(body))
    if m is None:
        return "no EXPECT marker in the prompt"
    return structured_reply(m.group(1), int(m.group(2)))


def image_count(body: dict[str, Any]) -> int:
    contents = [m["content"] for m in body.get("messages", []) if isinstance(m.get("content"), list)]
    return sum(c.get("type") == "image_url" for content in contents for c in content)


SAFE_LEVEL1 = structured_reply("Safe", 1)  # the default reply


class FakeOpenAIServer:
    def __init__(
        self,
        reply: Reply = SAFE_LEVEL1,
        *,
        latency: float = 0.0,
        faults: FaultSpec = None,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = ("429", "500"),
        seed: int = 0,
        retry_after: float = 0.05,
        hang: float = 30.0,
        drip: float = 1.0,
        huge: int = 50 * 1024**2,
        redirect_to: str | None = None,
        stall_for: int = 0,
        models: Sequence[str] = ("fake-gpt",),
        port: int = 0,
    ) -> None:
        bad = [k for k in fault_kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; known: {FAULT_KINDS}")
        self.reply, self.latency, self.faults = reply, latency, faults
        self.fault_rate, self.fault_kinds, self.rng = fault_rate, tuple(fault_kinds), random.Random(seed)
        self.retry_after, self.hang, self.models, self.port = retry_after, hang, tuple(models), port
        self.drip, self.huge, self._redirect_to = drip, huge, redirect_to
        self.stall_for = stall_for
        self.stalls: list[int] = []  # per stalled request: answers sent when it was answered
        self.requests: list[dict[str, Any]] = []  # JSON bodies, arrival order
        self.paths: list[str] = []  # the route of each request ("/v1/chat/completions", "/v1/completions")
        self.auth: list[str] = []  # Authorization header of each request ("" if none)
        self.faults_served: list[str] = []
        self.gets: list[str] = []  # GET requests to the chat endpoint (a followed redirect), by URL
        self.bytes_sent = 0  # body bytes of "huge" answers written before each finished or was cut off
        self.completed = 0  # normal answers sent
        self.inflight = self.max_inflight = 0  # concurrent requests being handled (now / peak)
        self._busy = [0.0, 0.0, 0.0]  # [first arrival, last change, integral of inflight over time]
        self._scripted = list(faults) if isinstance(faults, Sequence) else []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def redirect_to(self) -> str:
        """Where "302"/"307" send the client: by default this endpoint again, with a signed query."""
        return self._redirect_to or f"{self.base_url}/chat/completions?sig=query-secret-456"

    def __enter__(self) -> FakeOpenAIServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True, name="fake-openai")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    def _serve(self, ready: threading.Event) -> None:
        self._loop = loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=256 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._chat)
        app.router.add_get("/v1/chat/completions", self._get_chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/fake/stats", self._stats)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.1)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()
        loop.run_forever()
        loop.close()

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        stats = {"calls": self.calls, "completed": self.completed, "faults": self.faults_served}
        inflight = {"max_inflight": self.max_inflight, "mean_inflight": round(self.mean_inflight, 2)}
        return web.json_response(stats | inflight)

    def _fault_for(self, body: dict[str, Any], index: int) -> str | None:
        if callable(self.faults):
            return self.faults(body, index)
        if self._scripted:
            return self._scripted.pop(0)
        if self.fault_rate and self.rng.random() < self.fault_rate:
            return self.rng.choice(self.fault_kinds)
        return None

    @property
    def mean_inflight(self) -> float:
        """Requests in flight on average, from the first arrival to the last answer."""
        first, last, area = self._busy
        return area / (last - first) if last > first else float(self.inflight)

    def _count(self, change: int) -> None:
        now = time.perf_counter()
        busy = self._busy
        if not self.requests and change > 0 and not self.inflight:
            busy[0] = busy[1] = now
        busy[2] += self.inflight * (now - busy[1])
        busy[1] = now
        self.inflight += change
        self.max_inflight = max(self.max_inflight, self.inflight)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self._count(+1)
        try:
            return await self._answer(request)
        finally:
            self._count(-1)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not JSON", "invalid_request_error")
        index = len(self.requests)
        self.requests.append(body)
        self.paths.append(request.path)
        self.auth.append(request.headers.get("Authorization", ""))
        fault = self._fault_for(body, index)
        if fault:
            self.faults_served.append(fault)
        if fault == "429":
            resp = _error(429, "Rate limit reached (fake).", "rate_limit_exceeded")
            resp.headers["Retry-After"] = f"{self.retry_after:g}"
            return resp
        if fault == "500":
            return _error(500, "The server had an error (fake).", "server_error")
        if fault == "401":
            return _error(401, f"Incorrect API key provided: {request.headers.get('Authorization')}", "auth")
        if fault == "403":
            return _error(403, "You do not have access to this model (fake).", "permission_denied")
        if fault in ("302", "307"):
            redirect = web.HTTPFound if fault == "302" else web.HTTPTemporaryRedirect
            raise redirect(self.redirect_to)
        if fault == "hang":
            await asyncio.sleep(self.hang)
        elif fault == "stall":
            deadline = time.monotonic() + self.hang
            while self.completed < self.stall_for and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            self.stalls.append(self.completed)
        elif self.latency:
            await asyncio.sleep(self.latency)
        if fault == "malformed":
            broken = '{"id": "x", "choices": [ {"mess'
            return web.Response(status=200, text=broken, content_type="application/json")
        text = self.reply(body) if callable(self.reply) else self.reply
        if fault == "garbage":
            text = "Lorem ipsum, I have no structured opinion on this."
        if fault == "echo":
            text = _quoting(text, request.headers.get("Authorization", ""))
        self.completed += 1
        prompt_tokens: float = len(prompt_text(body)) // 4 + 255 * image_count(body) + 8
        completion_tokens: float = len(text) // 4 + 1 if fault != "refusal" else 10
        if fault == "nan_usage":
            prompt_tokens, completion_tokens = float("nan"), float("inf")
        common: dict[str, Any] = {
            "created": int(time.time()),
            "model": body.get("model", self.models[0]),
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if request.path.endswith("/v1/completions"):  # a raw-prompt completion: the text, no message
            choice = {"index": 0, "text": text, "finish_reason": "length", "logprobs": None}
            completion = {
                "id": f"cmpl-fake-{index}",
                "object": "text_completion",
                "choices": [choice],
                **common,
            }
            if fault == "drip":
                return await self._drip(request, json.dumps(completion).encode())
            return web.json_response(completion)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if fault == "refusal":
            message = {"role": "assistant", "content": None, "refusal": REFUSAL}
        if fault == "nan_content":
            message["content"] = float("nan")
        answer = {
            "id": f"chatcmpl-fake-{index}",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            **common,
        }
        if fault == "drip":
            return await self._drip(request, json.dumps(answer).encode())
        if fault in ("huge", "huge_declared"):
            return await self._huge(request, answer, declared=fault == "huge_declared")
        if fault == "gzip_bomb":
            return self._gzip_bomb(answer)
        return web.json_response(answer)  # json.dumps: NaN and Infinity go out as such

    async def _get_chat(self, request: web.Request) -> web.Response:
        """A careless server answers a GET on the chat endpoint (where a followed 302 lands)."""
        self.gets.append(str(request.url))
        text = self.reply({}) if callable(self.reply) else self.reply
        message = {"role": "assistant", "content": text, "refusal": None}
        return web.json_response(
            {
                "id": "chatcmpl-fake-get",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.models[0],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    async def _drip(self, request: web.Request, data: bytes) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(data)
        await resp.prepare(request)
        for i in range(len(data)):
            await resp.write(data[i : i + 1])
            await asyncio.sleep(self.drip)
        await resp.write_eof()
        return resp

    def _padded(self, answer: dict[str, Any]) -> tuple[bytes, int, bytes]:
        """The answer's JSON around its content, and how many bytes of padding make it `huge` long."""
        answer["choices"][0]["message"]["content"] = "\x00"  # placeholder, replaced by the padding
        head, _, tail = json.dumps(answer).partition('"\\u0000"')
        return (head + '"').encode(), max(0, self.huge - len(head) - len(tail) - 2), ('"' + tail).encode()

    async def _huge(
        self, request: web.Request, answer: dict[str, Any], *, declared: bool
    ) -> web.StreamResponse:
        """A valid answer whose content is padded to `huge` bytes, made and written 64 KiB at a time."""
        head, pad, tail = self._padded(answer)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declared:
            resp.content_length = len(head) + pad + len(tail)
        await resp.prepare(request)
        try:
            await resp.write(head)
            for piece in _padding(pad):
                await resp.write(piece)
                self.bytes_sent += len(piece)
            await resp.write(tail)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):  # the client hung up
            pass
        return resp

    def _gzip_bomb(self, answer: dict[str, Any]) -> web.Response:
        """The `huge` answer gzip-compressed (about 1000:1), compressed piece by piece."""
        head, pad, tail = self._padded(answer)
        gz = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip format
        body = [gz.compress(head), *(gz.compress(p) for p in _padding(pad)), gz.compress(tail), gz.flush()]
        return web.Response(
            body=b"".join(body), headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )


def _padding(n: int, chunk: bytes = b"A" * 65536) -> Iterator[bytes]:
    while n > 0:
        yield chunk[: min(n, len(chunk))]
        n -= len(chunk)


def _quoting(text: str, quoted: str) -> str:
    """The reply with a quote added: inside its JSON object where it is one, else after it."""
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        return json.dumps({**obj, "note": f"request came with {quoted}"})
    return f"{text} (request came with {quoted})"


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": kind}}, status=status)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m mis_eval.testing.fake_openai --port 8000 --latency 0.2 --fault-rate 0.03` (Ctrl-C stops)."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--fault-kinds", default="429,500")
    p.add_argument("--retry-after", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reply", default="marker", help="fixed reply text, or 'marker' (see marker_reply)")
    a = p.parse_args(argv)
    srv = FakeOpenAIServer(
        marker_reply if a.reply == "marker" else a.reply,
        latency=a.latency,
        fault_rate=a.fault_rate,
        fault_kinds=a.fault_kinds.split(","),
        retry_after=a.retry_after,
        seed=a.seed,
        port=a.port,
    )
    with srv:
        print(srv.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
