"""From lmms-eval requests to batches, and back, without losing a request to a neighbour's failure."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from mis_eval.core.samples import mark_failed
from model_adapters.params import GenParams

log = logging.getLogger(__name__)


@dataclass
class GenRequest:
    key: str  # "task/split/doc_id", for error messages
    prompt: str
    images: list[Image.Image]
    params: GenParams
    question: str = ""  # the task's context, before the family's layout
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskRequest:
    """lmms-eval's generate_until Instance.args, unpacked."""

    context: str
    gen_kwargs: dict[str, Any]
    doc_to_visual: Callable[[Any], Any]
    doc_id: int
    task: str
    split: str

    @classmethod
    def from_instance(cls, instance: Any) -> TaskRequest:
        context, gen_kwargs, doc_to_visual, doc_id, task, split = instance.args
        return cls(context, dict(gen_kwargs or {}), doc_to_visual, doc_id, task, split)

    @property
    def key(self) -> str:
        return f"{self.task}/{self.split}/{self.doc_id}"

    def described(self, doc: Any) -> str:
        """The key plus the record's own id, which is what users look up in their data."""
        record_id = doc.get("id") if isinstance(doc, dict) else None
        return self.key if record_id is None else f"{self.key} (id={record_id})"


def longest_first(contexts: Sequence[str]) -> list[int]:
    """Indices ordered by descending context length: batches of similar length pad less, and a
    prompt that does not fit shows up in the first batch rather than after hours."""
    return sorted(range(len(contexts)), key=lambda i: -len(contexts[i]))


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    size = max(1, int(size))
    for start in range(0, len(items), size):
        yield items[start : start + size]


def by_params(batch: Sequence[GenRequest]) -> dict[GenParams, list[int]]:
    groups: dict[GenParams, list[int]] = {}
    for i, req in enumerate(batch):
        groups.setdefault(req.params, []).append(i)
    return groups


def isolate(batch: Sequence[GenRequest], run: Callable[[Sequence[GenRequest]], list[str]]) -> list[str]:
    """`run(batch)`; if it raises, bisect until the failing requests are alone and mark only them failed.

    A systematic failure (every request of a batch of several fails with the same error) is raised
    instead: it is a broken setup, not bad input, and should stop the run loudly.
    """
    results = _bisect(batch, run)
    errors = {f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)}
    if len(batch) > 1 and len(errors) == 1 and all(isinstance(r, BaseException) for r in results):
        raise RuntimeError(f"all {len(batch)} requests of a batch failed with {errors.pop()}") from results[0]
    out = []
    for req, res in zip(batch, results, strict=True):
        if isinstance(res, BaseException):
            log.warning("generation failed for %s: %s", req.key, res)
            out.append(mark_failed(f"{req.key}: {type(res).__name__}: {res}"))
        else:
            out.append(res)
    return out


def _bisect(batch: Sequence[GenRequest], run: Callable[[Sequence[GenRequest]], list[str]]) -> list[Any]:
    try:
        texts = run(batch)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded per request, never swallowed
        if len(batch) == 1:
            return [exc]
        half = len(batch) // 2
        return _bisect(batch[:half], run) + _bisect(batch[half:], run)
    if len(texts) != len(batch):
        raise RuntimeError(f"backend returned {len(texts)} outputs for {len(batch)} requests")
    return list(texts)
