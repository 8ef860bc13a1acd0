"""Run records: one self-describing JSON per model x task x judge, plus per-sample JSONL.

The leaderboard is rebuilt from these files alone, so everything a number depends on
(model args, data fingerprint, judge model and prompt hash, versions) is written here.
Schema: see README "Run records" and mis_eval.core.record (which also reads /1 files).
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mis_eval.core.defaults import RESULTS_DIR
from mis_eval.core.files import (
    OutputError,
    UnreadableFile,
    parse_json,
    read_json,
    read_text,
    remove_quietly,
    write_new,
)
from mis_eval.core.record import SCHEMA, RunRecord, is_run_record

DEFAULT_RESULTS_DIR = RESULTS_DIR


def slug(text: str) -> str:
    """File-system safe name for a model or judge id (never used for display)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return s[:80] or "unnamed"


def _stem_candidates(base: str) -> Iterator[str]:
    yield base
    for n in range(2, 10_000):
        yield f"{base}-{n}"
    raise OutputError(Path(base), OSError(errno.EEXIST, "too many runs of this name"))


def write_run(
    record: RunRecord, samples: Iterable[Mapping[str, Any]], results_dir: Path | str = DEFAULT_RESULTS_DIR
) -> Path:
    """Write `<results>/<model>/<task>__<judge>__<time>[-N].json` and its `.samples.jsonl`.

    Each run gets files of its own: names are taken exclusively (never replacing a file), so two
    runs that map to one name (model names that slug alike, finished in the same second) get `-2`,
    `-3`, ... Both files are written whole or not at all: the per-sample file first, then the
    record; when the record cannot be written the per-sample file goes too, so a failed write
    (disk full) leaves neither. Returns the path of the JSON record.
    """
    results_dir = Path(results_dir)
    stamp = record.finished_at.replace(":", "").replace("-", "").replace("+0000", "Z")
    folder = results_dir / slug(record.model.name)
    rows = "".join(json.dumps(s, ensure_ascii=False, allow_nan=False, default=str) + "\n" for s in samples)
    for stem in _stem_candidates(f"{slug(record.task.name)}__{slug(record.judge.id)}__{stamp}"):
        samples_path, json_path = folder / f"{stem}.samples.jsonl", folder / f"{stem}.json"
        if json_path.exists():
            continue
        try:
            write_new(samples_path, rows)
        except FileExistsError:
            continue
        record.run_id = f"{slug(record.model.name)}/{stem}"
        record.samples_file = samples_path.name
        try:
            write_new(
                json_path,
                json.dumps(record.to_dict(), indent=2, ensure_ascii=False, allow_nan=False, default=str),
            )
        except FileExistsError:
            remove_quietly(samples_path)  # another run took the name between the two files
            continue
        except BaseException:
            remove_quietly(samples_path)  # no per-sample file without its record
            raise
        return json_path
    raise AssertionError("unreachable")


def read_run(path: Path | str) -> RunRecord:
    """The run record at `path`; ValueError naming the file when it is unreadable or malformed."""
    return _run_from(Path(path), read_json(path))


def _run_from(path: Path, data: Any) -> RunRecord:
    try:
        return RunRecord.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UnreadableFile(f"{path}: {e}") from None


def find_runs(paths: Iterable[Path | str], problems: list[str] | None = None) -> list[tuple[Path, RunRecord]]:
    """Run records among files and folders (searched recursively), skipping other JSON.

    A results folder may hold other files (lmms-eval results, calibration records), which are
    skipped. A file found in a folder that cannot be read, or says it is a run record but is
    malformed, is appended to `problems` ("path: why") and skipped; without `problems` it is an
    error. A file named explicitly must be a readable run record.
    """
    out = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
        files = [p] if not p.is_dir() else sorted(p.rglob("*.json"))
        for f in files:
            if f.name.startswith(".") or (f is not p and not f.is_file()):
                continue  # a temporary file of an atomic write in progress; a folder named *.json
            try:
                data = read_json(f)
                if not is_run_record(data):
                    if f is p:
                        raise UnreadableFile(f"{f}: not a {SCHEMA} run record")
                    continue
                out.append((f, _run_from(f, data)))
            except UnreadableFile as e:
                if f is p or problems is None:
                    raise
                problems.append(str(e))
    return out


def read_run_samples(path: Path | str, record: RunRecord) -> list[dict[str, Any]]:
    """The per-sample rows of the run record at `path` (its `samples_file`, next to it)."""
    if not record.samples_file:
        raise UnreadableFile(f"{path}: run record names no samples_file")
    samples_path = Path(path).with_name(record.samples_file)
    try:
        text = read_text(samples_path)
    except UnreadableFile as e:
        raise UnreadableFile(f"{e} (the per-sample file of {path})") from None
    rows = []
    for i, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 is text
        if not line.strip():
            continue
        row = parse_json(line, f"{samples_path}: line {i}", finite=True)
        if not isinstance(row, dict) or not isinstance(row.get("doc"), dict):
            raise UnreadableFile(f"{samples_path}: line {i}: expected an object with a doc object")
        if not isinstance(row.get("verdicts"), dict):
            raise UnreadableFile(f"{samples_path}: line {i}: expected an object of verdicts")
        if not isinstance(row.get("response"), str | None):
            raise UnreadableFile(f"{samples_path}: line {i}: response is neither text nor null")
        rows.append(row)
    return rows


def sample_id(row: Mapping[str, Any]) -> str:
    """A sample's identity within its task: the record's `id`, else lmms-eval's doc_id."""
    doc = row.get("doc") or {}
    return str(doc.get("id", row.get("doc_id")))


def response_sha256(response: str | None) -> str:
    """Which answer a human label is about: a regenerated response no longer matches it."""
    return hashlib.sha256((response or "").encode("utf-8")).hexdigest()
