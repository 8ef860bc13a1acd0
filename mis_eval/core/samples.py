"""A model response to one benchmark record, as read from lmms-eval's logged samples."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sample:
    task: str  # lmms-eval task name, e.g. "mis_hard"
    doc_id: int
    doc: dict[str, Any]  # the dataset record (id, question, category, image paths, ...)
    response: str | None  # None when generation failed
    error: str | None = None  # why generation failed (never an API key)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. several responses per question (SIUO)

    @property
    def key(self) -> str:
        return f"{self.task}/{self.doc.get('id', self.doc_id)}"


def repeated(keys: Iterable[str]) -> dict[str, list[int]]:
    """Keys seen more than once -> every position (0-based) they occur at.

    A sample log has one line per record: a repeated record would be counted once per line and
    move every rate, so readers refuse it (or keep one of each, when told which).
    """
    positions: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        positions.setdefault(key, []).append(i)
    return {k: v for k, v in positions.items() if len(v) > 1}


# lmms-eval passes only text from a model to a task, so a generation that finally failed
# travels as this sentinel (NUL-delimited: no tokenizer decodes to it) and is turned back
# into `response=None, error=...` before anything is judged or recorded.
FAILED_SENTINEL = "\x00mis-eval:generation-failed\x00"


def mark_failed(reason: str) -> str:
    """What an adapter returns instead of response text when a request finally failed."""
    return FAILED_SENTINEL + reason


# What lmms-eval 0.7.3's own API models (`openai`, `async_openai`, `gemini`) log as the response of a
# request that finally failed, or that its budget stopped: a failed generation, not an answer to judge.
LMMS_EVAL_FAILURES = ("[LMMS_EVAL_REQUEST_FAILED", "[LMMS_EVAL_BUDGET_EXCEEDED]")


def split_response(text: str | None) -> tuple[str | None, str | None]:
    """(response, error): the error is set, and the response None, for a failed generation."""
    if text is None:
        return None, "no response"
    if text.startswith(FAILED_SENTINEL):
        return None, text[len(FAILED_SENTINEL) :] or "generation failed"
    if text.startswith(LMMS_EVAL_FAILURES):  # only the marker: the server's error text may echo a secret
        return None, f"lmms-eval logged {text[: text.find(']') + 1]}"
    return text, None


# How a mis-eval model adapter generated (image processing, sampling, budget, deviations), per
# task, in this process. lmms-eval 0.7.3 drops a request's gen_kwargs from its samples file and
# has no other path from a model to the logs, but it runs the model and the tasks'
# process_results in the same process: the adapter notes its settings here and the first item a
# task logs afterwards carries them (`logged_item`), which is how they reach the run record.
_GENERATION: dict[str, dict[str, Any]] = {}
_PENDING: set[str] = set()


def note_generation(task: str, settings: dict[str, Any]) -> None:
    _GENERATION[task] = settings
    _PENDING.add(task)


def logged_item(doc: dict[str, Any], response: Any) -> dict[str, Any]:
    """What a task's process_results logs per record: task, id, response (and, once per generation
    call, the adapter's settings under "generation")."""
    task = str(doc["task"])
    item: dict[str, Any] = {"task": doc["task"], "id": doc["id"], "response": response}
    if task in _PENDING:
        _PENDING.discard(task)
        item["generation"] = _GENERATION[task]
    return item
