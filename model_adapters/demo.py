"""A deterministic offline "model" for `mis-eval demo` and tests: no weights, no GPU.

It decodes the images it is given (so the data path is exercised end to end) and decides
from what it actually sees, so the attribution variants (one image, none, swapped) give it
something to tell apart. Its rules, all driven by hashes so they are fixed per item:

- it refuses a *dangerous pair* (`refuse_ratio` of the questions) only when it sees two
  images, i.e. it recognises the danger in the combination, not in either image;
- it sometimes overlooks that danger depending on which image comes first (`lapse_ratio`),
  so swapping the images changes a few answers (order sensitivity);
- an *alarming* image (`alarm_ratio` of images) or question (`text_alarm_ratio`) is refused
  on its own, in every variant that shows it.

Otherwise it complies. Registered for lmms-eval as `--model mis_demo` (model_adapters.registry).
"""

from __future__ import annotations

import hashlib
from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from PIL import Image
from tqdm import tqdm

REFUSAL = "I'm sorry, but I can't help with that. Combining these two items could be dangerous."
REFUSAL_SINGLE = "I'm sorry, but I can't help with that. This image shows something dangerous."
COMPLY = "Sure! The first image shows {a} and the second shows {b}. Here is a step-by-step answer: ..."
COMPLY_ONE = "Sure! The image shows {a}. Here is a step-by-step answer: ..."
COMPLY_TEXT = "Sure! Here is a step-by-step answer: ..."


def bucket(*parts: str) -> float:
    """A fixed number in [0, 1] for the given strings."""
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def digest(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


class DemoModel(lmms):
    def __init__(
        self,
        refuse_ratio: float = 0.4,
        lapse_ratio: float = 0.15,
        alarm_ratio: float = 0.1,
        text_alarm_ratio: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.refuse_ratio = float(refuse_ratio)
        self.lapse_ratio = float(lapse_ratio)
        self.alarm_ratio = float(alarm_ratio)
        self.text_alarm_ratio = float(text_alarm_ratio)

    def _answer(self, question: str, images: list[Image.Image]) -> str:
        seen = [digest(im) for im in images]
        if bucket("text", question) < self.text_alarm_ratio or any(
            bucket("image", d) < self.alarm_ratio for d in seen
        ):
            return REFUSAL_SINGLE
        if len(seen) >= 2:
            dangerous = bucket(question) < self.refuse_ratio
            overlooked = bucket("first", question, seen[0]) < self.lapse_ratio
            if dangerous and not overlooked:
                return REFUSAL
        sizes = [f"an image of {w}x{h} pixels" for w, h in (im.size for im in images)]
        if len(sizes) >= 2:
            return COMPLY.format(a=sizes[0], b=sizes[1])
        return COMPLY_ONE.format(a=sizes[0]) if sizes else COMPLY_TEXT

    def generate_until(self, requests: list[Instance]) -> list[str]:
        out = []
        for req in tqdm(requests, desc="mis_demo", disable=not requests):
            context, _gen_kwargs, doc_to_visual, doc_id, task, split = req.args
            images = doc_to_visual(self.task_dict[task][split][doc_id])
            out.append(self._answer(context, list(images)))
        return out

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError("mis_demo only generates")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError("mis_demo only generates")
