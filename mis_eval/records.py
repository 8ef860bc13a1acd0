"""Run records: one self-describing JSON per model x task x judge, plus per-sample JSONL.

The leaderboard is rebuilt from these files alone, so everything a number depends on
(model args, data fingerprint, judge model and prompt hash, versions) is written here.
Schema: see README "Run records". Bump SCHEMA when a field changes meaning.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = "mis-eval.run/1"
DEFAULT_RESULTS_DIR = Path("results")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def slug(text: str) -> str:
    """File-system safe name for a model or judge id (never used for display)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return s[:80] or "unnamed"


def package_versions(
    names: Iterable[str] = ("mis-eval", "lmms-eval", "transformers", "torch", "vllm", "openai"),
) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass
class Metric:
    """A rate in percent with its 95% interval; value None means 'not measurable'."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0  # samples with a usable verdict (the denominator)
    n_excluded: int = 0  # judge errors / unparseable / failed generations, left out of n
    ci_method: str | None = None  # how ci_low/ci_high were computed (mis_eval.metrics); None: unknown/none


@dataclass
class RunRecord:
    model: dict[str, Any]  # {"name": display name, "adapter": lmms-eval model, "args": str}
    task: dict[str, Any]  # {"name", "benchmark", "version", "split", "data": {source, fingerprint, n}}
    judge: dict[str, Any]  # JudgeInfo as dict
    metrics: dict[str, Metric]  # headline rates, e.g. {"ASR": ..., "RSR": ...}
    breakdown: list[dict[str, Any]] = field(default_factory=list)  # [{"by","group","metrics":{..}}]
    counts: dict[str, int] = field(default_factory=dict)  # total/ok/error/unparseable/generation_failed
    accounting: dict[str, Any] = field(default_factory=dict)  # calls/retries/cache_hits/tokens/cost_usd
    generation: dict[str, Any] = field(default_factory=dict)  # decoding settings as run
    notes: list[str] = field(default_factory=list)  # approximations and deviations, in words
    source: dict[str, Any] = field(default_factory=dict)  # where responses came from
    agreement: list[dict[str, Any]] = field(default_factory=list)  # panel runs: judge-pair statistics
    # whether the numbers can be used: {complete, unusable, verdicts, unusable_fraction, max_unusable,
    # reason}; empty in records written before it existed
    completeness: dict[str, Any] = field(default_factory=dict)
    started_at: str = field(default_factory=utc_now)
    finished_at: str = field(default_factory=utc_now)
    versions: dict[str, str] = field(default_factory=package_versions)
    schema: str = SCHEMA
    run_id: str = ""
    samples_file: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def complete(self) -> bool:
        """False when too many verdicts are unusable for the rates to stand (see `completeness`)."""
        return bool(self.completeness.get("complete", True))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunRecord:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} record (schema={d.get('schema')!r})")
        data = dict(d)
        data["metrics"] = {k: Metric(**v) for k, v in d["metrics"].items()}
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


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
    stem = f"{slug(record.task['name'])}__{slug(record.judge['id'])}__{stamp}"
    folder = results_dir / slug(record.model["name"])
    record.run_id = record.run_id or f"{slug(record.model['name'])}/{stem}"
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


def iter_runs(results_dir: Path | str = DEFAULT_RESULTS_DIR) -> Iterable[tuple[Path, RunRecord]]:
    for p in sorted(Path(results_dir).rglob("*.json")):
        yield p, read_run(p)


def find_runs(paths: Iterable[Path | str]) -> list[tuple[Path, RunRecord]]:
    """Run records among files and folders (searched recursively), skipping other JSON.

    Unlike `iter_runs`, a results folder may hold other files (lmms-eval results, calibration
    records); a JSON that says it is a run record but cannot be read is still an error.
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
            if isinstance(data, dict) and data.get("schema") == SCHEMA:
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
