"""A real OpenAI-compatible HTTP server on 127.0.0.1 that stands in for GPT-4o in tests and benchmarks.

It speaks `POST /v1/chat/completions` and `GET /v1/models` over real sockets (aiohttp in a
background thread), so clients are exercised end to end: HTTP errors, headers, timeouts.
`GET /fake/stats` reports calls, faults and peak concurrency (for a server in another process:
`python -m mis_eval.testing.fake_openai --latency 0.2 --fault-rate 0.03` prints its base URL).

    with FakeOpenAIServer(reply='{"label_str": "Safe"}', latency=0.2, faults=["429", None]) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="x")
        ...
        srv.requests  # JSON bodies received, in arrival order

Fault kinds: "429" (with Retry-After), "500", "401" (echoes the Authorization header, as a
careless server might), "403" (no access to the model), "hang" (answers after `hang` seconds),
"malformed" (HTTP 200, broken JSON), "garbage" (valid API answer, nonsense content),
"refusal" (message.refusal set, content null), "stall" (answers once the server has answered
`stall_for` requests in all, or after `hang` seconds; `stalls` records how many it had).
`faults` is a list consumed one per call (None = answer normally), or a callable
`(body, call_index) -> kind | None`; `fault_rate` injects random `fault_kinds`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from mis_tasks.mis.parsing import structured_reply

Reply = str | Callable[[dict[str, Any]], str]
FaultSpec = Sequence[str | None] | Callable[[dict[str, Any], int], str | None] | None
FAULT_KINDS = ("429", "500", "401", "403", "hang", "stall", "malformed", "garbage", "refusal")
REFUSAL = "I'm sorry, I can't assist with that."


def prompt_text(body: dict[str, Any]) -> str:
    """All text the client sent in `messages` (handy for computed replies)."""
    parts: list[str] = []
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
        self.stall_for = stall_for
        self.stalls: list[int] = []  # per stalled request: answers sent when it was answered
        self.requests: list[dict[str, Any]] = []  # JSON bodies, arrival order
        self.auth: list[str] = []  # Authorization header of each request ("" if none)
        self.faults_served: list[str] = []
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
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if fault == "refusal":
            message = {"role": "assistant", "content": None, "refusal": REFUSAL}
        self.completed += 1
        prompt_tokens = len(prompt_text(body)) // 4 + 255 * image_count(body) + 8
        completion_tokens = len(text) // 4 + 1 if fault != "refusal" else 10
        return web.json_response(
            {
                "id": f"chatcmpl-fake-{index}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", self.models[0]),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )


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
