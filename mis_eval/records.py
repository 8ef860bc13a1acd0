"""Run records: one self-describing JSON per model x task x judge, plus per-sample JSONL.

The leaderboard is rebuilt from these files alone, so everything a number depends on
(model args, data fingerprint, judge model and prompt hash, versions) is written here.
Schema: see README "Run records" and mis_eval.core.record (which also reads /1 files).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mis_eval.core.defaults import RESULTS_DIR
from mis_eval.core.record import SCHEMA, RunRecord, is_run_record

DEFAULT_RESULTS_DIR = RESULTS_DIR


def slug(text: str) -> str:
    """File-system safe name for a model or judge id (never used for display)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return s[:80] or "unnamed"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_run(
    record: RunRecord, samples: Iterable[Mapping[str, Any]], results_dir: Path | str = DEFAULT_RESULTS_DIR
) -> Path:
    """Write `<results>/<model>/<task>__<judge>__<time>.json` and its `.samples.jsonl`.

    Files are written to a temporary name and renamed, so a reader never sees half a record.
    Returns the path of the JSON record.
    """
    results_dir = Path(results_dir)
    stamp = record.finished_at.replace(":", "").replace("-", "").replace("+0000", "Z")
    stem = f"{slug(record.task.name)}__{slug(record.judge.id)}__{stamp}"
    folder = results_dir / slug(record.model.name)
    record.run_id = record.run_id or f"{slug(record.model.name)}/{stem}"
    samples_path = folder / f"{stem}.samples.jsonl"
    record.samples_file = samples_path.name
    _atomic_write(
        samples_path, "".join(json.dumps(s, ensure_ascii=False, default=str) + "\n" for s in samples)
    )
    json_path = folder / f"{stem}.json"
    _atomic_write(json_path, json.dumps(record.to_dict(), indent=2, ensure_ascii=False, default=str))
    return json_path


def read_run(path: Path | str) -> RunRecord:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON ({e})") from e
    try:
        return RunRecord.from_dict(data)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from e


def find_runs(paths: Iterable[Path | str]) -> list[tuple[Path, RunRecord]]:
    """Run records among files and folders (searched recursively), skipping other JSON.

    A results folder may hold other files (lmms-eval results, calibration records); a JSON
    that says it is a run record but cannot be read is still an error.
    """
    out = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
        files = [p] if p.is_file() else sorted(p.rglob("*.json"))
        for f in files:
            if any(part.startswith(".") for part in f.parts[-1:]):
                continue  # a temporary file of an atomic write in progress
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                if p.is_file():
                    raise ValueError(f"{f}: malformed JSON ({e})") from e
                continue
            if is_run_record(data):
                out.append((f, read_run(f)))
            elif p.is_file():
                raise ValueError(f"{f}: not a {SCHEMA} run record")
    return out


def read_run_samples(path: Path | str, record: RunRecord) -> list[dict[str, Any]]:
    """The per-sample rows of the run record at `path` (its `samples_file`, next to it)."""
    if not record.samples_file:
        raise ValueError(f"{path}: run record names no samples_file")
    samples_path = Path(path).with_name(record.samples_file)
    try:
        lines = samples_path.read_text(encoding="utf-8").split("\n")  # not splitlines: U+2028 is text
    except OSError as e:
        raise ValueError(f"{samples_path}: cannot read the per-sample file of {path} ({e})") from e
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{samples_path}: line {i}: malformed JSON ({e})") from e
        if not isinstance(row, dict) or "doc" not in row or "verdicts" not in row:
            raise ValueError(f"{samples_path}: line {i}: expected an object with doc and verdicts")
        rows.append(row)
    return rows


def sample_id(row: Mapping[str, Any]) -> str:
    """A sample's identity within its task: the record's `id`, else lmms-eval's doc_id."""
    doc = row.get("doc") or {}
    return str(doc.get("id", row.get("doc_id")))


def response_sha256(response: str | None) -> str:
    """Which answer a human label is about: a regenerated response no longer matches it."""
    return hashlib.sha256((response or "").encode("utf-8")).hexdigest()
