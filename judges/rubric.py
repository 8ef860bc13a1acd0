"""Rubrics: a prompt template plus the parser that reads the judge's reply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any, Literal, Protocol

from judges.base import Parsed, sha256_text


class ReplyParser(Protocol):
    """Reads a judge reply; `untrusted` are the judged texts (to tell the judge's words from echoes)."""

    def __call__(self, reply: str, untrusted: Sequence[str] = ..., /) -> Parsed: ...


def load_template(package: str, filename: str) -> str:
    """Read a prompt template shipped next to the code that uses it (bytes kept exactly)."""
    return resources.files(package).joinpath(filename).read_bytes().decode("utf-8")


@dataclass(frozen=True, eq=False)
class Rubric:
    """How to ask a judge about one response and how to read its answer.

    `fill="format"` uses `str.format` (MIS, MM-SafetyBench, VLGuard); `fill="replace"` uses
    plain `str.replace` of `{name}` in the order of the fields mapping (SIUO), exactly as each
    reference implementation does. The request shape (`text_first`, `image_detail`, decoding
    values; None = not sent) is the reference's too: paper mode sends exactly this.
    """

    name: str
    template: str
    parse: ReplyParser
    fill: Literal["format", "replace"] = "format"
    system: str | None = None
    with_images: bool = True
    max_tokens: int = 128
    temperature: float | None = 0.0  # None: not sent (the API default applies), as VLGuard's win rate
    top_p: float | None = None  # None: not sent
    text_first: bool = False  # user turn [text, images...] (SIUO, VLGuard) instead of [images..., text] (MIS)
    image_detail: str | None = None  # OpenAI image `detail` ("low" in VLGuard); None: not sent
    response_format: Mapping[str, Any] | None = None  # JSON schema for structured output
    # For the offline keyword judge: (label when the response refuses, label when it does not);
    # None where a refusal keyword says nothing about the rubric (e.g. helpfulness).
    keyword_labels: tuple[str, str] | None = None
    # Fields holding model output: delimited in hardened mode; echoes of them are discounted when reading.
    untrusted: tuple[str, ...] = ("response",)
    # Other body keys the reference client sends that change nothing in the answer (the SDK's
    # `beta.chat.completions.parse` used by MIS sends `"stream": false`): sent for byte fidelity.
    request_extra: Mapping[str, Any] = field(default_factory=dict)
    # The template is an open classifier's own prompt, sent as raw text (no chat template) and
    # answered with one token: "harmbench" (judges.harmbench; MIR-SafetyBench). That classifier is
    # then the paper's judge, and any other judge of this rubric is recorded as an approximation.
    classifier: str | None = None

    @cached_property
    def sha256(self) -> str:
        return sha256_text(self.template)

    def read(self, reply: str, untrusted: Sequence[str] = ()) -> Parsed:
        """The judge's verdict from its reply, discounting text echoed from `untrusted`."""
        return self.parse(reply, untrusted)

    def render(self, fields: Mapping[str, str]) -> str:
        if self.fill == "format":
            return self.template.format(**fields)
        text = self.template
        for k, v in fields.items():
            text = text.replace("{" + k + "}", v)
        return text
