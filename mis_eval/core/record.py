"""The run record's types: what one model x task x judge run measured, as written to disk.

Lower layers (benchmarks' scoring) build `Metric`s; the app writes and reads `RunRecord`s
(mis_eval.records). Bump SCHEMA when a field changes meaning.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

SCHEMA = "mis-eval.run/1"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
    ci_method: str | None = None  # how ci_low/ci_high were computed (core.metrics); None: unknown/none


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
