"""The run record's types: what one model x task x judge run measured, as written to disk.

Lower layers (benchmarks' scoring) build `Metric`s; the app writes and reads `RunRecord`s
(mis_eval.records). Every part of a record is a typed dataclass with `to_dict` / `from_dict`,
so readers use attributes that mypy checks and `from_dict(r.to_dict()) == r`.

Schemas (README "Run records"). Bump SCHEMA when a field changes meaning.
- `mis-eval.run/2` (written): the JSON has the same layout as /1. What /2 adds is a contract:
  every field of `model`, `task`, `task.data`, `judge`, `counts`, `completeness`, each breakdown
  row and each agreement row is written, and a field no type declares is refused on read. The
  only open parts are the benchmark's own `task` fields (MIS: split, variant, model_sees,
  judge_sees: `TaskInfo.extra`, written flat beside name/benchmark) and the engine-specific
  `judge.settings`, `accounting`, `generation`, `source`.
- `mis-eval.run/1` (read): the same fields, any of them possibly left out (e.g. `completeness`
  before it existed, `judge.approximation`, counts nobody counted). Read as /2 with the missing
  fields at their defaults; the record then says `schema` /2.
"""

from __future__ import annotations

import functools
import math
import platform
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, ClassVar, Self

SCHEMA = "mis-eval.run/2"
SCHEMA_V1 = "mis-eval.run/1"
READABLE_SCHEMAS = (SCHEMA_V1, SCHEMA)


def is_run_record(data: object) -> bool:
    """Whether parsed JSON says it is a run record of a schema this code reads."""
    return isinstance(data, Mapping) and data.get("schema") in READABLE_SCHEMAS


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


def _known(cls: type, d: object, where: str) -> dict[str, Any]:
    """The fields of `d` that dataclass `cls` declares; any other key is an error (not silently lost)."""
    if not isinstance(d, Mapping):
        raise TypeError(f"{where}: expected an object, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(str(k) for k in d if k not in names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    return dict(d)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _conforms(value: Any, tp: Any) -> bool:
    """Whether parsed JSON `value` has the declared type `tp` (a float is finite; bool is no number)."""
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        try:
            return math.isfinite(value)
        except OverflowError:  # an integer beyond any float
            return False
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict:
        return isinstance(value, dict) and all(
            _conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items()
        )
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    return isinstance(value, tp) if isinstance(tp, type) else True


def _require(d: Mapping[str, Any], names: Iterable[str], where: str) -> None:
    if missing := [n for n in names if n not in d]:
        raise ValueError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")


@functools.cache
def _required(cls: type) -> tuple[str, ...]:
    """The fields of dataclass `cls` that have no default."""
    return tuple(f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)


def _typed(cls: type, d: Mapping[str, Any], where: str, skip: Iterable[str] = ()) -> None:
    """Every field of `d` has the type `cls` declares for it (parts with a from_dict of their own
    are checked there): a record with `model.name: 5` is malformed, not a name."""
    hints = _hints(cls)
    for name, value in d.items():
        if name in skip or name not in hints:
            continue
        if not _conforms(value, hints[name]):
            nonfinite = isinstance(value, float) and not math.isfinite(value)
            shown = "a non-finite number" if nonfinite else type(value).__name__
            raise TypeError(f"{where}.{name}: expected {_type_name(hints[name])}, got {shown}")


def _type_name(tp: Any) -> str:
    return str(tp).replace("typing.", "") if not isinstance(tp, type) else tp.__name__


def _plain(value: Any) -> Any:
    """JSON-ready copy: records via their `to_dict`, containers rebuilt (nothing shared with the record)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _metrics(d: object, where: str) -> dict[str, Metric]:
    if not isinstance(d, Mapping):
        raise TypeError(f"{where}: expected an object of metrics, got {type(d).__name__}")
    return {str(k): Metric.from_dict(v, f"{where}.{k}") for k, v in d.items()}


class _Part:
    """A typed part of a record: written field by field, read back with unknown fields refused."""

    __dataclass_fields__: ClassVar[dict[str, Any]]
    _where: ClassVar[str] = "record"  # how errors name this part
    _only_if_set: ClassVar[tuple[str, ...]] = ()  # fields /1 wrote only when set: left out when empty

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        for name in self._only_if_set:
            if not out[name]:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, d: object, where: str | None = None) -> Self:
        where = where or cls._where
        known = _known(cls, d, where)
        _require(known, _required(typing.cast(type, cls)), where)
        _typed(cls, known, where)
        return cls(**known)


@dataclass
class Metric(_Part):
    """A rate in percent with its 95% interval; value None means 'not measurable'."""

    _where: ClassVar[str] = "metric"

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0  # samples with a usable verdict (the denominator)
    n_excluded: int = 0  # judge errors / unparseable / failed generations, left out of n
    ci_method: str | None = None  # how ci_low/ci_high were computed (core.metrics); None: unknown/none


@dataclass
class ModelInfo(_Part):
    _where: ClassVar[str] = "model"
    name: str  # display name (also the results sub-folder)
    adapter: str = ""  # lmms-eval model
    args: str = ""  # lmms-eval --model_args, secrets redacted


@dataclass
class DataInfo(_Part):
    _where: ClassVar[str] = "task.data"
    _only_if_set: ClassVar[tuple[str, ...]] = ("source",)
    fingerprint: str | None = None  # hash of question file + records (comma-joined when several)
    n: int = 0  # samples judged
    limit: int | float | None = None  # lmms-eval --limit: a partial run, never ranked beside full ones
    source: str | None = None  # where the data came from, where a writer says (written only then)


@dataclass
class TaskInfo:
    """The task as scored; `extra` holds the benchmark's own fields (Scores.task), written flat."""

    name: str
    benchmark: str
    version: str
    data: DataInfo = field(default_factory=DataInfo)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. MIS: split, variant, model_sees, judge_sees

    def __post_init__(self) -> None:
        clash = sorted(set(self.extra) & {f.name for f in fields(self)})
        if clash:
            raise ValueError(f"task: benchmark field(s) {clash} would shadow the record's own")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "benchmark": self.benchmark,
            "version": self.version,
            "data": self.data.to_dict(),
            **_plain(self.extra),
        }

    @classmethod
    def from_dict(cls, d: object, where: str = "task") -> TaskInfo:
        if not isinstance(d, Mapping):
            raise TypeError(f"{where}: expected an object, got {type(d).__name__}")
        own = {"name", "benchmark", "version", "data"}
        _require(d, ("name", "benchmark", "version"), where)
        _typed(cls, {k: v for k, v in d.items() if k in own}, where, skip=("data",))
        return cls(
            name=d["name"],
            benchmark=d["benchmark"],
            version=d["version"],
            data=DataInfo.from_dict(d.get("data", {}), f"{where}.data"),
            extra={str(k): v for k, v in d.items() if k not in own},
        )


@dataclass
class JudgeRecord(_Part):
    """What the record says about the judge (judges.base.JudgeInfo, as data)."""

    _where: ClassVar[str] = "judge"

    id: str
    provider: str
    model: str | None  # pinned model id; None for offline judges
    settings: dict[str, Any] = field(default_factory=dict)  # engine-specific (temperature, members, ...)
    prompt_sha256: dict[str, str] = field(default_factory=dict)  # rubric -> template hash
    approximation: str | None = None  # why numbers from this judge are not the paper's protocol


@dataclass
class BreakdownRow:
    """The headline rates within one group, e.g. by="category", group="Privacy"."""

    by: str
    group: str
    metrics: dict[str, Metric] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "group": self.group, "metrics": _plain(self.metrics)}

    @classmethod
    def from_dict(cls, d: object, where: str = "breakdown") -> BreakdownRow:
        known = _known(cls, d, where)
        _require(known, ("by", "group"), where)
        _typed(cls, known, where, skip=("metrics",))
        return cls(
            by=known["by"],
            group=known["group"],
            metrics=_metrics(known.get("metrics", {}), f"{where}.metrics"),
        )


@dataclass
class Counts(_Part):
    _where: ClassVar[str] = "counts"
    samples: int = 0
    generation_failed: int = 0  # the model gave no response (not a judge error)
    verdicts: int = 0
    ok: int = 0
    error: int = 0  # judge errors
    unparseable: int = 0
    cached: int = 0


@dataclass
class Completeness(_Part):
    """Whether the numbers can be used: at most `max_unusable` of the verdicts unusable."""

    _where: ClassVar[str] = "completeness"

    complete: bool
    unusable: int = 0
    verdicts: int = 0
    unusable_fraction: float | None = None  # None: no verdicts (scored without a judge)
    max_unusable: float = 0.0
    reason: str | None = None  # why incomplete, in words


@dataclass
class Agreement(_Part):
    """One judge pair's agreement on one rubric (judges.agreement.PairAgreement, as data)."""

    _where: ClassVar[str] = "agreement"
    _only_if_set: ClassVar[tuple[str, ...]] = ("with_perception",)

    judges: list[str]
    n: int  # samples both judges graded
    excluded: int  # samples where either judge failed
    percent_agreement: float | None
    cohen_kappa: float | None
    confusion: dict[str, dict[str, int]]  # judge A outcome -> judge B outcome -> samples
    rubric: str
    with_perception: bool = False  # outcomes are label/perception; written only when true


@dataclass
class RunRecord:
    model: ModelInfo
    task: TaskInfo
    judge: JudgeRecord
    metrics: dict[str, Metric]  # headline rates, e.g. {"ASR": ..., "RSR": ...}
    breakdown: list[BreakdownRow] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    accounting: dict[str, Any] = field(
        default_factory=dict
    )  # judge engine's calls/retries/cache_hits/tokens/cost
    generation: dict[str, Any] = field(default_factory=dict)  # decoding settings as run
    notes: list[str] = field(default_factory=list)  # approximations and deviations, in words
    source: dict[str, Any] = field(default_factory=dict)  # where responses came from
    agreement: list[Agreement] = field(default_factory=list)  # panel runs: judge-pair statistics
    completeness: Completeness | None = None  # None (written {}): records from before it existed
    started_at: str = field(default_factory=utc_now)
    finished_at: str = field(default_factory=utc_now)
    versions: dict[str, str] = field(default_factory=package_versions)
    schema: str = SCHEMA
    run_id: str = ""
    samples_file: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        out["completeness"] = self.completeness.to_dict() if self.completeness else {}
        return out

    @property
    def complete(self) -> bool:
        """False when too many verdicts are unusable for the rates to stand (see `completeness`)."""
        return self.completeness is None or self.completeness.complete

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunRecord:
        """A record of schema /2, or /1 converted (see the module docstring); unknown fields are an error."""
        if not isinstance(d, Mapping):
            raise TypeError(f"record: expected an object, got {type(d).__name__}")
        if d.get("schema") not in READABLE_SCHEMAS:
            raise ValueError(f"not a {SCHEMA} (or {SCHEMA_V1}) record (schema={d.get('schema')!r})")
        data = _known(cls, d, "record")
        parts = ("model", "task", "judge", "metrics", "breakdown", "counts", "agreement", "completeness")
        _require(d, ("model", "task", "judge", "metrics"), "record")
        _typed(cls, data, "record", skip=parts)
        for name in ("breakdown", "agreement"):
            if not isinstance(d.get(name, []), list):
                raise TypeError(f"record.{name}: expected a list, got {type(d[name]).__name__}")
        data["schema"] = SCHEMA
        data["model"] = ModelInfo.from_dict(d["model"])
        data["task"] = TaskInfo.from_dict(d["task"])
        data["judge"] = JudgeRecord.from_dict(d["judge"])
        data["metrics"] = _metrics(d["metrics"], "metrics")
        data["breakdown"] = [
            BreakdownRow.from_dict(b, f"breakdown[{i}]") for i, b in enumerate(d.get("breakdown", []))
        ]
        data["counts"] = Counts.from_dict(d.get("counts", {}))
        data["agreement"] = [
            Agreement.from_dict(a, f"agreement[{i}]") for i, a in enumerate(d.get("agreement", []))
        ]
        done = d.get("completeness") or None
        data["completeness"] = Completeness.from_dict(done) if done is not None else None
        return cls(**data)
