"""The repository is self-contained: upstream copies hash to the recorded values, no path leaves the repo."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from tests.upstream_files import FILES, REPO, sha256_file, upstream

# Spelled so that this file does not match itself.
OUTSIDE = re.compile(
    r"\.\./shared|shared[/]reference|\"shared\"\s*/\s*\"reference\"|parents\[[2-9]\]|(REPO|ROOT)\.parent\b|/wor[k]/"
)


def test_every_bundled_copy_hashes_to_the_recorded_upstream_value() -> None:
    copies = [f for f in FILES.values() if f.copy is not None]
    assert len(copies) == 31
    for f in copies:
        assert f.copy is not None and f.copy.is_file(), f.name
        assert (f.copy.stat().st_size, sha256_file(f.copy)) == (f.size, f.sha256), f"{f.copy} vs {f.source}"
        assert upstream(f.name) == f.copy


def test_manifest_names_its_sources_and_why_a_file_is_not_bundled() -> None:
    for f in FILES.values():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+ @ [0-9a-f]{40} : \S+", f.source), f.name
        assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), f.name
        assert (f.copy is None) == bool(f.not_bundled), f.name
    assert {n for n, f in FILES.items() if f.copy is None} == {
        "vlguard/test.json",
        "vlguard/gpt4_safe_safes.json",
    }


def test_a_changed_or_missing_copy_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One changed byte of a prompt is caught; a file without a copy cannot be read as if it had one."""
    entry = FILES["mis/judge_prompt.txt"]
    changed = tmp_path / "judge_prompt.txt"
    changed.write_bytes(upstream(entry.name).read_bytes().replace(b"Unsafe", b"unsafe", 1))
    monkeypatch.setitem(FILES, entry.name, dataclasses.replace(entry, copy=changed))
    with pytest.raises(
        pytest.fail.Exception, match=r"judge_prompt.txt differs from upstream DripNowhy/MIS @ 9cd94ec"
    ):
        upstream(entry.name)
    with pytest.raises(pytest.fail.Exception, match="vlguard/test.json: no in-repo copy"):
        upstream("vlguard/test.json")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk it, skipping build output
        skip = {".git", ".venv", "venv", "__pycache__", "build", "dist", "node_modules"}
        return [
            p
            for p in REPO.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(REPO).parts) and "egg-info" not in str(p)
        ]
    return [REPO / name for name in out.decode().split("\0") if name]


def test_no_file_names_a_path_outside_the_repository() -> None:
    files = tracked_files()
    assert len(files) > 100 and Path(__file__) in files
    hits = []
    for path in files:
        if not path.is_file():
            continue  # deleted in the work tree, or a link to a folder (a .venv symlink)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary: images, fonts
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)
