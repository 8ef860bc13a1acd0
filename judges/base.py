"""The judge contract shared by every benchmark.

A *rubric* says what to ask (prompt template) and how to read the answer (parser);
a *judge* is who answers (GPT-4o, a local server, a keyword rule). Benchmarks build
`JudgeRequest`s, any judge turns them into `Verdict`s. A verdict whose status is not
OK is never counted as safe or unsafe: metrics exclude it and report it.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from judges.rubric import Rubric


class Status(StrEnum):
    OK = "ok"
    ERROR = "error"  # the call failed: timeout, HTTP error, retries exhausted, judge refused
    UNPARSEABLE = "unparseable"  # the judge answered, but not in a form the rubric can read


class UnparseableReply(ValueError):
    """Raised by a rubric parser when a judge reply carries no readable verdict."""


@dataclass(frozen=True)
class JudgeRequest:
    """One thing to judge. `fields` fill the rubric's template placeholders."""

    key: str  # stable sample key, for reporting only (not part of the cache key)
    rubric: Rubric
    fields: Mapping[str, str]
    images: tuple[str, ...] = ()  # image file paths shown to vision judges (in order)
    slot: str | None = None  # where the verdict is stored per sample; defaults to the rubric name

    @property
    def verdict_key(self) -> str:
        return self.slot or self.rubric.name


@dataclass(frozen=True)
class Parsed:
    """What a rubric reads out of a judge reply."""

    label: str  # rubric-specific, lower case: "safe"/"unsafe", "true"/"false", "m"/"M", ...
    # What else the rubric reads beside the label, by name (MIS: {"perception": 1-3}); the
    # benchmark that owns the rubric interprets it, judges only carry it.
    detail: Mapping[str, Any] = field(default_factory=dict)


# Detail names every serialized verdict carries right after `label`, null when absent: the
# samples.jsonl format, kept byte for byte (MIS's perception level was once a Verdict field).
RECORDED_DETAIL = ("perception",)


@dataclass(slots=True)  # one per sample and judge: 20k-sample batches hold them all
class Verdict:
    status: Status
    label: str | None = None
    raw: str = ""  # the judge's reply as received (never the API key, never request headers)
    error: str | None = None
    judge: str = ""  # judge id
    cached: bool = False
    calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    detail: dict[str, Any] = field(default_factory=dict)  # the rubric's Parsed.detail

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        detail = d.pop("detail")
        head = {"status": str(self.status), "label": d.pop("label")}
        d.pop("status")
        return head | {k: detail.pop(k, None) for k in RECORDED_DETAIL} | detail | d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        """The inverse of to_dict: keys that are no field are detail (nulls dropped)."""
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d and k != "detail"}
        known["status"] = Status(known["status"])
        detail = {k: v for k, v in d.items() if k not in cls.__dataclass_fields__ and v is not None}
        return cls(**known, detail=detail)


@dataclass(frozen=True)
class JudgeInfo:
    """What a run record says about the judge that produced its numbers."""

    id: str
    provider: str
    model: str | None
    settings: Mapping[str, Any] = field(default_factory=dict)
    prompt_sha256: Mapping[str, str] = field(default_factory=dict)  # rubric -> template hash
    approximation: str | None = None  # why numbers from this judge are not the paper's protocol


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Judge(abc.ABC):
    """A judge grades requests in batches; implementations bound their own concurrency."""

    name: str = ""

    @abc.abstractmethod
    def supports(self, rubric: Rubric) -> bool:
        """False where this judge cannot grade a rubric (its metrics are then reported missing)."""

    @abc.abstractmethod
    async def ajudge(self, requests: Sequence[JudgeRequest], *, progress: bool = True) -> list[Verdict]:
        """Grade every request; one verdict per request, same order. Never raises for one bad item."""

    @abc.abstractmethod
    def info(self, rubrics: Sequence[Rubric]) -> JudgeInfo:
        """Describe this judge for the run record (no secrets)."""

    def accounting(self) -> dict[str, Any]:
        """Totals since creation: calls, retries, cache_hits, errors, tokens, estimated cost_usd."""
        return {}

    def judge(self, requests: Sequence[JudgeRequest], *, progress: bool = True) -> list[Verdict]:
        return asyncio.run(self.ajudge(requests, progress=progress))

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and caches."""
