"""The generic family's guard: n images must become n image spans in the input ids before anything
is generated, so a chat template that drops images never produces answers.

The rule (documented in model_adapters/README.md):

* a span is a maximal run of the processor's image token (`processor.image_token_id`) in the input
  ids the processor (transformers) or the engine (vLLM, its `prompt_token_ids`) made;
* an architecture that writes one image as several runs (tiles or rows with separator tokens in
  between: Mistral 3, SmolVLM, Idefics3) names in its quirks, or in the model arg `image_marker=`, a
  token the processor writes exactly once per image, and the spans are that token's occurrences.

The first request of each image count is encoded and counted before it is generated; a count other
than the number of images stops the run with an error naming the checkpoint. When the encoding itself
fails, the rendered prompt's placeholders (the template's image markers) decide: fewer or more than the
images is the same error; otherwise that request fails alone, as any bad request does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from model_adapters.batching import GenRequest
from model_adapters.families import Family
from model_adapters.hf_loading import CheckpointError


class ImageSpanError(CheckpointError):
    """The checkpoint's template or processor does not turn n images into n image spans."""


def _token_id(tokenizer: Any, token: str) -> int | None:
    vocab = tokenizer.get_vocab()
    return int(vocab[token]) if token in vocab else None


@dataclass(frozen=True)
class ImageSpans:
    checkpoint: str
    placeholder: str | None  # what the template writes per image (processor.image_token)
    token_id: int | None  # the image token of the input ids (processor.image_token_id)
    token: str | None = None  # its name
    marker: str | None = None  # written once per image, for architectures with several runs per image
    marker_id: int | None = None

    @classmethod
    def of(cls, processor: Any, checkpoint: str, marker: str | None = None) -> ImageSpans:
        """From the checkpoint's processor; `marker` is a token or the name of a processor attribute
        holding it (`image_end_token`)."""
        tokenizer = getattr(processor, "tokenizer", processor)
        placeholder = getattr(processor, "image_token", None) or getattr(tokenizer, "image_token", None)
        placeholder = str(placeholder) if placeholder else None
        token_id = getattr(processor, "image_token_id", None)
        if not isinstance(token_id, int):
            token_id = _token_id(tokenizer, placeholder) if placeholder else None
        token = str(tokenizer.convert_ids_to_tokens(token_id)) if token_id is not None else None
        marker_token = marker_id = None
        if marker:
            named = getattr(processor, marker, None) or getattr(tokenizer, marker, None)
            marker_token = str(named) if isinstance(named, str) else marker
            marker_id = _token_id(tokenizer, marker_token)
            if marker_id is None:
                raise CheckpointError(
                    f"image_marker {marker!r} is not a token of checkpoint {checkpoint!r}'s tokenizer"
                )
        elif token_id is None:
            raise CheckpointError(
                f"cannot tell which token marks an image in checkpoint {checkpoint!r}: its processor has no "
                "image_token; pass the model arg image_marker=<a token written once per image>"
            )
        return cls(checkpoint, placeholder, token_id, token, marker_token, marker_id)

    @property
    def rule(self) -> str:
        if self.marker_id is not None:
            return f"occurrences of {self.marker!r} (written once per image)"
        return f"maximal runs of the image token {self.token!r}"

    def count(self, ids: Sequence[int]) -> int:
        ids = [int(i) for i in ids]
        if self.marker_id is not None:
            return ids.count(self.marker_id)
        return sum(1 for i, t in enumerate(ids) if t == self.token_id and (i == 0 or ids[i - 1] != t))

    def placeholders(self, prompt: str) -> int | None:
        """How many image placeholders the rendered prompt holds (the template's image markers)."""
        return prompt.count(self.placeholder) if self.placeholder else None

    def error(self, req: GenRequest, found: str) -> ImageSpanError:
        placeholders = self.placeholders(req.prompt)
        written = (
            "" if placeholders is None else f"; its chat template wrote {placeholders} {self.placeholder!r}"
        )
        return ImageSpanError(
            f"checkpoint {self.checkpoint!r}: the prompt of {req.key} with {len(req.images)} images {found}"
            f"{written}. Its chat template or processor drops, merges or splits images, so nothing is "
            "generated. "
            f"Spans counted: {self.rule}. If this architecture writes one image as several runs of image "
            "tokens, pass the model arg image_marker=<a token it writes once per image> (or add a Quirks "
            "entry in model_adapters/models/generic.py)."
        )

    def check(self, ids: Sequence[int], req: GenRequest) -> None:
        found = self.count(ids)
        if found != len(req.images):
            raise self.error(req, f"holds {found} image spans in its input ids")


@dataclass
class SpanGuard:
    """Verifies the first request of each image count, before it is generated."""

    spans: ImageSpans
    verified: set[int] = field(default_factory=set)

    @classmethod
    def for_family(cls, family: Family, processor: Any, checkpoint: str) -> SpanGuard | None:
        """The guard of a family that verifies image spans (the generic one), else None."""
        if not family.verify_image_spans:
            return None
        return cls(ImageSpans.of(processor, checkpoint, family.image_marker))

    def judge(self, req: GenRequest, ids: Sequence[int] | BaseException) -> None:
        """`ids`: the input ids the model would see for `req`, or why they could not be made."""
        n = len(req.images)
        if isinstance(ids, BaseException):
            if self.spans.placeholders(req.prompt) not in (None, n):
                raise self.spans.error(req, f"cannot be encoded ({type(ids).__name__}: {ids})") from ids
            return  # a bad request of its own: it fails alone when generated; the next one is verified
        self.spans.check(ids, req)
        self.verified.add(n)

    def verify(self, batch: Sequence[GenRequest], encode: Callable[[GenRequest], Sequence[int]]) -> None:
        """Encodes, in order, each request whose image count is not verified yet (one per count, unless
        it cannot be encoded: then the next of that count)."""
        for req in batch:
            if len(req.images) not in self.verified:
                self.judge(req, attempt(encode, req))


def attempt(encode: Callable[[GenRequest], Sequence[int]], req: GenRequest) -> Sequence[int] | BaseException:
    try:
        return encode(req)
    except Exception as exc:  # noqa: BLE001 - judged by SpanGuard.judge
        return exc
