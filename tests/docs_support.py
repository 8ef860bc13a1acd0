"""Reads the worked examples out of the contributor guides (docs/*.md), so their tests build
exactly what a reader copies. A block is found by the text line just above its fence."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def guide(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def block_after(text: str, marker: str, lang: str) -> str:
    """The body of the one fenced ```lang block whose nearest non-blank line above contains `marker`."""
    lines = text.splitlines()

    def above(i: int) -> str:
        return next((line for line in reversed(lines[:i]) if line.strip()), "")

    starts = [i for i, line in enumerate(lines) if line == f"```{lang}" and marker in above(i)]
    assert len(starts) == 1, (
        f"expected one ```{lang} block after a line naming {marker!r}, found {len(starts)}"
    )
    body = []
    for line in lines[starts[0] + 1 :]:
        if line == "```":
            return "\n".join(body) + "\n"
        body.append(line)
    raise AssertionError(f"the ```{lang} block after {marker!r} is not closed")
