"""Upstream files the project relies on, checked against sha256 values recorded in the repository.

`upstream_sha256.json` lists each upstream file (prompt, question file, keyword list) with its full
sha256, its source (repository @ commit : path) and the in-repo copy that must hash to it. Tests
that compare the product with the published material read it through `upstream(name)`, so a clone
with nothing beside it checks byte identity without any copy of the upstream repositories.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MANIFEST = Path(__file__).with_name("upstream_sha256.json")


@dataclass(frozen=True)
class UpstreamFile:
    name: str
    sha256: str
    size: int
    source: str  # "owner/repo @ commit : path"
    copy: Path | None  # None: not redistributable, nothing in the repo to check
    not_bundled: str


def _load() -> dict[str, UpstreamFile]:
    files: dict[str, UpstreamFile] = {}
    for e in json.loads(MANIFEST.read_text(encoding="utf-8"))["files"]:
        up = e["upstream"]
        files[e["name"]] = UpstreamFile(
            name=e["name"],
            sha256=e["sha256"],
            size=e["bytes"],
            source=f"{up['repo']} @ {up['commit']} : {up['path']}",
            copy=REPO / e["copy"] if e["copy"] else None,
            not_bundled=e.get("not_bundled", ""),
        )
    return files


FILES = _load()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def upstream(name: str) -> Path:
    """The in-repo copy of upstream file `name`, after checking it hashes to the recorded value."""
    entry = FILES.get(name)
    if entry is None or entry.copy is None:
        pytest.fail(f"{name}: no in-repo copy of this upstream file is recorded in {MANIFEST.name}")
    if sha256_file(entry.copy) != entry.sha256:
        pytest.fail(f"{entry.copy} differs from upstream {entry.source} (sha256 {entry.sha256})")
    return entry.copy
