"""Images in, images out: what a task's doc_to_visual returns, as RGB PIL images or base64 data URLs."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image


def load_images(visuals: Iterable[Any] | Any | None) -> list[Image.Image]:
    """RGB images, in order, from PIL images, paths, or {"bytes"|"path": ...} dicts (HF datasets)."""
    if visuals is None:
        return []
    if not isinstance(visuals, list | tuple):
        visuals = [visuals]
    return [_to_rgb(v, i) for i, v in enumerate(visuals, 1)]


def _to_rgb(visual: Any, position: int) -> Image.Image:
    if isinstance(visual, Image.Image):
        image = visual
    elif isinstance(visual, str | Path):
        image = Image.open(visual)
    elif isinstance(visual, dict) and visual.get("bytes"):
        image = Image.open(io.BytesIO(visual["bytes"]))
    elif isinstance(visual, dict) and visual.get("path"):
        image = Image.open(visual["path"])
    else:
        raise TypeError(
            f"visual {position} is a {type(visual).__name__}, not an image "
            "(videos and audio are not supported)"
        )
    return image if image.mode == "RGB" else image.convert("RGB")


def to_data_url(image: Image.Image, fmt: str = "png", quality: int = 95) -> str:
    buf = io.BytesIO()
    fmt = fmt.lower()
    if fmt in ("jpg", "jpeg"):
        image.save(buf, format="JPEG", quality=quality)
        mime = "jpeg"
    elif fmt == "png":
        image.save(buf, format="PNG")
        mime = "png"
    else:
        raise ValueError(f"image_format must be png or jpeg, not {fmt!r}")
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")
