"""Showing names that came from outside (model names, judge ids, notes) without letting them
rearrange what surrounds them.

Unicode bidirectional controls (RIGHT-TO-LEFT OVERRIDE and friends) are invisible and make a
viewer reorder the text after them: a model called "evil\u202eLPP" reads as another name, and
table cells next to it appear reversed. HTML escaping, Markdown escaping and CSV formula guards
leave them untouched, so every place that shows a name (terminal summary, leaderboard HTML / MD
/ CSV / plot, self-test card) replaces them with a visible `[U+202E]` tag.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

# ALM, LRM, RLM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI (Unicode UAX #9 explicit formatting characters)
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")


def neutralise_bidi(text: str) -> str:
    """`text` with every bidi control replaced by a visible, inert `[U+XXXX]`."""
    return _BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def display(value: Any) -> Any:
    """neutralise_bidi for strings (Markup stays Markup: the tag adds no HTML), others unchanged."""
    if isinstance(value, str) and _BIDI.search(value):
        out = neutralise_bidi(value)
        return Markup(out) if isinstance(value, Markup) else out
    return value


def html_environment(folder: Path) -> jinja2.Environment:
    """The jinja2 environment of every page: autoescape, strict undefined, bidi controls neutralised
    in every `{{ ... }}` output (jinja's `finalize` runs before escaping)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=display,
    )
