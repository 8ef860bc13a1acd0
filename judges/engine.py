"""Shared batch machinery for model-backed judges: cache, de-duplication, progress, accounting.

A subclass only says how to get one raw reply (`_complete`) and what identifies its answers
(`_cache_parts`). Everything a run needs to be resumable and honest lives here: finished replies
are committed to the cache one by one, failures become ERROR / UNPARSEABLE verdicts, and nothing
raises for one bad item.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judges.accounting import Accounting, Progress
from judges.base import Judge, JudgeInfo, JudgeRequest, Status, UnparseableReply, Verdict
from judges.cache import CachedReply, JudgeCache, cache_key, lease_owner
from judges.prompting import image_sha256, render_prompt, untrusted_values
from judges.rubric import Rubric
from mis_eval.core.secrets import Scrubber, env_secrets

OFF = {False, "off", "none", "no", "false", "0"}
HARDENED_SUFFIX = "+hardened"  # judge ids of hardened-mode judges end so: never one column with paper mode
# A lease is renewed every third of this while its run lives; after a kill -9 the others take the
# key over once it lapses. Long enough that a stalled event loop does not lose leases.
DEFAULT_LEASE_S = 60.0


class JudgeSetupError(ValueError):
    """A judge cannot start at all (server unreachable while asking its model id, ...): one clear line.

    A ValueError, so the command line reports it as a configuration error (exit 2), no traceback.
    """


class JudgeCallError(Exception):
    """A judge call failed for good (retries exhausted, refusal, bad request)."""

    def __init__(self, message: str, *, calls: int = 1, retries: int = 0, raw: str = "") -> None:
        super().__init__(message)
        self.calls, self.retries, self.raw = calls, retries, raw


@dataclass(slots=True)
class Prepared:
    """One distinct judge input. The rendered prompt is not kept (it is rendered again when sent):
    a 20k-sample batch would otherwise hold every prompt in memory for the whole run. Dropped as
    soon as its verdict is settled."""

    request: JudgeRequest
    key: str
    indices: list[int]
    delimit: bool = True

    @property
    def prompt(self) -> str:
        return render_prompt(self.request, delimit_untrusted=self.delimit)


@dataclass(slots=True)
class Reply:
    reply: CachedReply
    calls: int = 1
    retries: int = 0


class BatchJudge(Judge):
    provider = "unknown"

    def __init__(
        self,
        *,
        model: str | None,
        cache: str | bool | None = None,
        hardened: bool = False,
        retry_unparseable: bool = False,
        lease: float = DEFAULT_LEASE_S,
    ) -> None:
        if float(lease) <= 0:
            raise ValueError("judge option lease (seconds) must be > 0")
        self.lease = float(lease)  # expiry of a claim on in-flight work (renewed while working)
        self.model = model
        self.hardened = bool(hardened)  # delimit untrusted fields (changes the prompt: own judge id)
        self.retry_unparseable = bool(retry_unparseable)  # ask again where the cached reply is unreadable
        self._cache: JudgeCache | None = None
        self.cache_path: Path | None = None
        if cache not in OFF:  # None / True / "on": the default file ($MIS_EVAL_CACHE or ~/.cache/...)
            custom = isinstance(cache, str) and cache not in ("on", "default")
            self._cache = JudgeCache(Path(str(cache)).expanduser() if custom else None)
            self.cache_path = self._cache.path
        self.acct = Accounting(judge=self.id, provider=self.provider, model=model)
        # Masked in every reply, error and cache row, whoever sent them (a server may echo the key).
        self._scrub = Scrubber([*env_secrets(), *self._own_secrets()])

    @property
    def id(self) -> str:
        # interned: every verdict of a batch carries this id, one string object instead of one per verdict
        return sys.intern(f"{self.name}:{self.model}{HARDENED_SUFFIX if self.hardened else ''}")

    # -- subclass hooks ----------------------------------------------------------------------
    @abc.abstractmethod
    def _cache_parts(self, request: JudgeRequest) -> dict[str, Any]:
        """Everything besides prompt and images that changes the answer (model, endpoint, decoding)."""

    @abc.abstractmethod
    async def _complete(self, item: Prepared) -> Reply:
        """One raw reply for one prepared request; raise JudgeCallError when it cannot be had."""

    def _own_secrets(self) -> list[str]:
        """Secrets this judge holds beyond the environment's (its key, credentials in its URL)."""
        return []

    async def _open(self) -> None:  # noqa: B027 - optional hook
        """Create clients bound to the running event loop."""

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Release what `_open` created."""

    def _claim_window(self) -> tuple[int, int]:
        """(most keys claimed and not yet settled, fewest free places worth a claim).

        The first bounds what a run holds leased (and in memory); the second batches claims so a
        fast judge does not take the cache's write lock once per finished item.
        """
        return 64, 32

    async def _complete_all(self, items: Sequence[Prepared], done: Any) -> None:
        """Default: all items concurrently (subclasses bound concurrency inside `_complete`)."""

        async def one(item: Prepared) -> None:
            result: Reply | JudgeCallError
            try:
                result = await self._complete(item)
            except JudgeCallError as e:
                result = e
            except Exception as e:  # a bug or an unexpected client error must not sink the batch
                result = JudgeCallError(f"{type(e).__name__}: {e}")
            done(item, result)  # once per item: its calls are counted once

        await asyncio.gather(*(one(it) for it in items))

    def redact(self, text: str) -> str:
        """Text that may be stored or shown, without the run's secrets (see `_own_secrets`)."""
        return self._scrub(text)

    # -- the batch ---------------------------------------------------------------------------
    def _prepare(self, request: JudgeRequest) -> tuple[str, str]:
        prompt = render_prompt(request, delimit_untrusted=self.hardened)
        rubric = request.rubric
        images = [image_sha256(p) for p in request.images] if rubric.with_images else []
        parts = {
            "rubric": rubric.sha256,
            "system": rubric.system,
            "prompt": prompt,
            "images": images,
            "max_tokens": rubric.max_tokens,
            "temperature": rubric.temperature,
            "shape": [rubric.top_p, rubric.text_first, rubric.image_detail],
            **self._cache_parts(request),
        }
        return prompt, cache_key(parts)

    def _verdict(
        self, item: Prepared, reply: CachedReply, *, cached: bool, calls: int, retries: int
    ) -> Verdict:
        # a fresh reply was masked before it was cached (`done`); a cached one is masked again, in
        # case it was stored before masking
        raw = self.redact(reply.raw) if cached else reply.raw
        base: dict[str, Any] = {"raw": raw, "judge": self.id, "cached": cached, "calls": calls}
        base |= {"retries": retries}
        if not cached:
            base |= {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens}
        try:
            parsed = item.request.rubric.read(raw, untrusted_values(item.request))
        except UnparseableReply as e:
            return Verdict(Status.UNPARSEABLE, error=self.redact(str(e)), **base)
        except Exception as e:
            return Verdict(
                Status.UNPARSEABLE, error=self.redact(f"parser failed: {type(e).__name__}: {e}"), **base
            )
        label = sys.intern(parsed.label)  # a handful of distinct labels across any number of verdicts
        return Verdict(Status.OK, label=label, detail=dict(parsed.detail), **base)

    async def ajudge(self, requests: Sequence[JudgeRequest], *, progress: bool = True) -> list[Verdict]:
        if self._cache is None and self.cache_path is not None:
            self._cache = JudgeCache(self.cache_path)  # reopened after aclose()
        try:
            await self._open()  # inside the try: a failed start still closes what it opened
            return await self._judge_batch(requests, progress)
        finally:
            await self._close()

    async def _judge_batch(self, requests: Sequence[JudgeRequest], progress: bool) -> list[Verdict]:
        acct = self.acct
        acct.requests += len(requests)
        out: list[Verdict | None] = [None] * len(requests)
        unique: dict[str, Prepared] = {}
        for i, r in enumerate(requests):
            acct.prompt_sha256[r.rubric.name] = r.rubric.sha256
            try:
                _, key = self._prepare(r)
            except Exception as e:  # missing image, template field missing, ...
                out[i] = Verdict(Status.ERROR, error=f"{r.key}: cannot build judge input: {e}", judge=self.id)
                acct.errors += 1
                continue
            unique.setdefault(key, Prepared(r, key, [], self.hardened)).indices.append(i)

        bar = Progress(len(requests), f"judge {self.id}", acct, progress)
        bar.bar.update(sum(v is not None for v in out))
        hits = self._cache.get_many(unique) if self._cache is not None else {}

        def settle(item: Prepared, v: Verdict) -> None:
            failed = not v.ok
            for n, i in enumerate(item.indices):
                copy = v
                if n:  # a duplicate input: the same reply, counted once
                    copy = dataclasses.replace(
                        v, cached=True, calls=0, retries=0, prompt_tokens=0, completion_tokens=0
                    )
                out[i] = copy
                acct.cache_hits += copy.cached
                acct.errors += copy.status is Status.ERROR
                acct.unparseable += copy.status is Status.UNPARSEABLE
                bar.update(cached=copy.cached, failed=failed)

        # Only what still needs a call is kept (by key, in order); each item is dropped once settled,
        # so a batch holds its verdicts and what is in flight, not every request's judge input.
        todo: dict[str, Prepared] = {}
        stale: dict[str, str] = {}
        for key, item in unique.items():
            hit = self._verdict(item, hits[key], cached=True, calls=0, retries=0) if key in hits else None
            if hit is None or (self.retry_unparseable and hit.status is Status.UNPARSEABLE):
                todo[key] = item
                if hit is not None:
                    stale[key] = hits[key].raw  # asked again: this reply does not count as finished
            else:
                settle(item, hit)
        del unique, hits
        owner = lease_owner()

        def done(item: Prepared, result: Reply | JudgeCallError) -> None:
            acct.calls += result.calls
            acct.retries += result.retries
            if isinstance(result, JudgeCallError):
                if self._cache is not None:
                    self._cache.release(owner, [item.key])  # another run may try it
                msg = self.redact(f"{item.request.key}: {result}")
                v = Verdict(
                    Status.ERROR,
                    error=msg,
                    raw=self.redact(result.raw),
                    judge=self.id,
                    calls=result.calls,
                    retries=result.retries,
                )
            else:
                rep = dataclasses.replace(result.reply, raw=self.redact(result.reply.raw))  # before caching
                acct.prompt_tokens += rep.prompt_tokens
                acct.completion_tokens += rep.completion_tokens
                if rep.served_model:
                    acct.served_models.add(rep.served_model)
                if self._cache is not None:  # committed now (survives kill -9); the lease goes with it
                    self._cache.put(item.key, self.id, rep, owner=owner)
                v = self._verdict(item, rep, cached=False, calls=result.calls, retries=result.retries)
            settle(item, v)

        def finished_elsewhere(item: Prepared, reply: CachedReply) -> None:
            settle(item, self._verdict(item, reply, cached=True, calls=0, retries=0))

        try:
            if todo and self._cache is None:
                await self._complete_all(list(todo.values()), done)
            elif todo:
                await self._leased(todo, done, finished_elsewhere, owner, stale)  # empties todo
        finally:
            bar.close()
        assert all(v is not None for v in out)
        return [v for v in out if v is not None]

    async def _leased(
        self,
        waiting: dict[str, Prepared],
        done: Callable[[Prepared, Reply | JudgeCallError], None],
        finished_elsewhere: Callable[[Prepared, CachedReply], None],
        owner: str,
        stale: dict[str, str],
    ) -> None:
        """Judge `waiting` (key -> item, emptied as items are taken) while other runs on the same
        cache may be judging the same keys.

        A sliding window: at most `window` keys are claimed and unsettled at any time, and as soon
        as `step` of them have settled that many more are claimed. What is bounded is items, not
        batches, so one slow item (a long backoff, a stalled call) holds one place, not a whole
        batch's. A key another run holds is skipped and later either read from the cache (its
        reply arrived) or claimed (its lease lapsed or was released after a failure).
        """
        cache = self._cache
        assert cache is not None
        window, step = self._claim_window()
        window, poll = max(window, 1), min(0.5, self.lease / 10)
        step = min(max(step, 1), window)
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()
        unsettled = 0  # claimed by this run, verdict not yet settled
        retry_at = 0.0  # when to look again at keys other runs hold

        def settled(item: Prepared, result: Reply | JudgeCallError) -> None:
            nonlocal unsettled
            done(item, result)
            unsettled -= 1
            wake.set()

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(self.lease / 3)
                cache.renew(owner, self.lease)

        beat = asyncio.create_task(heartbeat())
        try:
            while waiting or unsettled:
                room = window - unsettled
                if waiting and room >= min(step, len(waiting)) and loop.time() >= retry_at:
                    # not yet claimed by us nor settled (claim reads the keys before anything pops)
                    claimed, finished = cache.claim(waiting, owner, self.lease, limit=room, stale=stale)
                    if finished:
                        replies = cache.get_many(finished)
                        for key in finished:
                            if key in replies:
                                finished_elsewhere(waiting.pop(key), replies[key])
                    if claimed:
                        unsettled += len(claimed)
                        task = asyncio.create_task(
                            self._complete_all([waiting.pop(k) for k in claimed], settled)
                        )
                        tasks.add(task)
                        task.add_done_callback(lambda _: wake.set())
                        continue
                    retry_at = loop.time() + poll  # the rest is leased by other runs: look again later
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=poll)
                for task in [t for t in tasks if t.done()]:
                    tasks.discard(task)
                    task.result()  # re-raise a bug in _complete_all
        finally:
            beat.cancel()
            for task in tasks:
                task.cancel()
            cache.release(owner)

    # -- reporting ---------------------------------------------------------------------------
    def accounting(self) -> dict[str, Any]:
        return self.acct.as_dict()

    def settings(self) -> dict[str, Any]:
        cache = str(self.cache_path) if self.cache_path else None
        return {
            "hardened": self.hardened,
            "cache": cache,
            "retry_unparseable": self.retry_unparseable,
            "lease_s": self.lease,
        }

    def info(self, rubrics: Sequence[Rubric]) -> JudgeInfo:
        return JudgeInfo(
            id=self.id,
            provider=self.provider,
            model=self.model,
            settings=self.settings(),
            prompt_sha256={r.name: r.sha256 for r in rubrics},
            approximation=self.approximation_for(rubrics),
        )

    def approximation(self) -> str | None:
        return None

    def approximation_for(self, rubrics: Sequence[Rubric]) -> str | None:
        """`approximation()`, and for a rubric written for an open classifier (MIR's HarmBench
        classifier), that this judge is not that classifier: never the paper's column."""
        notes = [self.approximation()] if self.approximation() else []
        for name in sorted({r.classifier for r in rubrics if r.classifier}):
            notes.append(
                f"{self.id} answering the {name} classifier's prompt instead of the paper's {name} classifier"
            )
        return "; ".join(str(n) for n in notes) or None

    async def aclose(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
