"""The lmms-eval task class shared by every benchmark here: records from a validated local root.

lmms-eval's stock ConfigurableTask loads `dataset_path` with `datasets.load_dataset`; our
benchmarks instead read their release layout from a data root (with a per-record check of
schema, paths and images) and name it in YAML as `class: !function utils.<Task>`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import datasets
from lmms_eval.api.instance import Instance
from lmms_eval.api.task import ConfigurableTask
from PIL import Image

from mis_tasks.common import open_image, require_records
from mis_tasks.discovery import chat_requests


class LocalDataTask(ConfigurableTask):
    """Subclasses set `load_docs = staticmethod(f)`, f(task, dataset_kwargs=...) -> {id: record}."""

    load_docs: Callable[..., Mapping[str, dict[str, Any]]]

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        # lmms-eval hands python-class tasks their YAML including the `class` key, which TaskConfig rejects.
        super().__init__(config={k: v for k, v in (config or {}).items() if k != "class"}, **kwargs)
        self.chat_requests = chat_requests()  # built for a chat model (mis_tasks/discovery.py)

    def construct_requests(self, doc_id: int, ctx: str, **kwargs: Any) -> Any:
        """A chat model (lmms-eval's `huggingface`, `openai`, ...) gets the request shape of lmms-eval's
        ConfigurableMessagesTask, `(ctx, doc_to_messages, gen_kwargs, doc_id, task, split)`; every
        other model the simple one. Same records, question and generation settings either way."""
        if not self.chat_requests or self.OUTPUT_TYPE != "generate_until":
            return super().construct_requests(doc_id, ctx, **kwargs)
        split = kwargs["metadata"]["split"]
        gen_kwargs = copy.deepcopy(self.config.generation_kwargs)
        arguments = (ctx, self.doc_to_messages, gen_kwargs, doc_id, self.config.task, split)
        return Instance(
            request_type="generate_until",
            arguments=arguments,
            idx=0,
            task_name=self.config.task,
            doc_id=doc_id,
            **kwargs,
        )

    def doc_to_messages(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """One user turn: an image item per image of `doc_to_visual`, in order, then `doc_to_text`
        (for the safety benchmarks here, the question unchanged)."""
        content: list[dict[str, Any]] = [{"type": "image", "url": v} for v in self.doc_to_visual(doc) or []]
        content.append({"type": "text", "text": self.doc_to_text(doc)})
        return [{"role": "user", "content": content}]

    def download(self, dataset_kwargs: dict[str, Any] | None = None) -> None:
        docs = self.load_docs(str(self.config.task), dataset_kwargs=dataset_kwargs)
        require_records(list(docs), f"task {self.config.task}")
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(list(docs.values()))})
        self.dataset_no_image = self.dataset


def record_name(doc: dict[str, Any]) -> str:
    """How errors name a record: `<task> record id=<id>`."""
    return f"{doc['task']} record id={doc['id']}"


def one_image(doc: dict[str, Any]) -> list[Image.Image]:
    """`doc_to_visual` of a one-image record, decoded only now so memory stays flat over the split."""
    return [open_image(doc["image_path"], record_name(doc))]


def question(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    """`doc_to_text`: the record's question unchanged (these benchmarks add no system prompt or
    instruction to it)."""
    return str(doc["question"])
