"""Successful answers on disk (JSONL, one line per answer, appended as they arrive), for resuming.

A re-run with the same cache generates (or sends) only the requests without a stored answer, so an
interrupted evaluation resumes where it stopped. Failures are never stored: they are retried next
time. A key hashes a namespace (the API endpoint; for local models the checkpoint and the settings
that change its answers) and a request body: the API request itself (model, messages with images,
settings), or for local models `generation_body` (prompt text, image contents in order, generation
settings). API keys are part of neither.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

from mis_eval.core.samples import split_response
from model_adapters.batching import GenRequest

log = logging.getLogger(__name__)


def image_digest(image: Image.Image) -> str:
    """sha256 of the decoded pixels (mode, size, bytes): the same picture re-encoded is the same key."""
    h = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def generation_body(req: GenRequest) -> dict[str, Any]:
    """What a local model sees of one request: the rendered prompt, its images in order, the settings."""
    return {
        "prompt": req.prompt,
        "images": [image_digest(i) for i in req.images],
        "params": req.params.body(),
    }


class ResponseCache:
    def __init__(self, path: str | Path, namespace: str = "") -> None:
        self.path = Path(path)
        self.namespace = namespace
        self._answers: dict[str, str] = {}
        if self.path.exists():
            for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    row = json.loads(line)
                    self._answers[row["key"]] = row["response"]
                except (ValueError, KeyError, TypeError):  # e.g. a line cut by a crash
                    log.warning("%s line %d: unreadable cache entry skipped", self.path, n)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def key(self, body: dict[str, Any]) -> str:
        blob = json.dumps({"ns": self.namespace, "body": body}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, body: dict[str, Any]) -> str | None:
        return self._answers.get(self.key(body))

    def put(self, body: dict[str, Any], response: str, model: str | None = None) -> None:
        self.put_many([(body, response)], model)

    def put_many(self, items: Iterable[tuple[dict[str, Any], str]], model: str | None = None) -> int:
        """Store the successful answers among `items` in one append; failed generations are skipped.

        One O_APPEND write keeps lines whole when several processes (data-parallel ranks) share the file.
        """
        lines = []
        for body, response in items:
            if split_response(response)[1] is not None:
                continue
            key = self.key(body)
            self._answers[key] = response
            row = {"key": key, "model": model or body.get("model"), "response": response}
            lines.append(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        if lines:
            data = "".join(lines).encode("utf-8")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                while data:
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
        return len(lines)

    def __len__(self) -> int:
        return len(self._answers)
