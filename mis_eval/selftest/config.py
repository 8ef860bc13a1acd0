"""The selftest configuration (YAML or JSON): suites, thresholds, baseline, tolerances.

Read through a typed schema (pydantic, strict): a value of the wrong shape (thresholds as a
list, `judge: [keyword]`, `seed: abc`) or a number that is not finite is a configuration error
naming the file and every key at fault, so a release pipeline fails with a message a person
can act on rather than a traceback, and a gate never runs on a config it misread.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    model_validator,
)

from mis_eval.core.files import UnreadableFile, read_text

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")


@dataclass(frozen=True)
class TaskPlan:
    task: str
    n: int | None = None  # None: the whole task
    stratify: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class Threshold:
    pattern: str  # "task/metric", globs allowed
    max: float | None = None
    min: float | None = None

    def describe(self) -> str:
        parts = [f"≤ {self.max:g}"] if self.max is not None else []
        return " and ".join(parts + ([f"≥ {self.min:g}"] if self.min is not None else []))


@dataclass(frozen=True)
class FlipConfig:
    """The flip report (selftest/flips.py), made whenever the baseline's per-sample files exist."""

    rejudge: int = 1  # re-judging passes over the flipped items (0: panel disagreement only)
    alpha: float = 0.05  # significance level of the exact McNemar test
    fail_on_regression: bool = False  # fail the gate on a significant regression beyond judge noise


@dataclass
class SelftestConfig:
    path: Path | None
    sha256: str
    seed: int = 1234
    judge: str | None = None
    suites: dict[str, list[TaskPlan]] = field(default_factory=dict)
    thresholds: list[Threshold] = field(default_factory=list)
    baseline: Path | None = None
    tolerance: dict[str, float] = field(default_factory=lambda: {"default": 2.0})
    max_excluded: float = 0.05
    flips: FlipConfig = field(default_factory=FlipConfig)

    def tolerance_for(self, ref: str) -> float:
        for pattern, tol in self.tolerance.items():
            if pattern != "default" and fnmatch.fnmatchcase(ref, pattern):
                return tol
        return self.tolerance.get("default", 0.0)

    def suite(self, name: str) -> list[TaskPlan]:
        if name not in self.suites:
            raise ValueError(f"{self.path or 'config'}: no suite {name!r}; suites: {', '.join(self.suites)}")
        return self.suites[name]


def bundled(name: str) -> Path | None:
    """`default` / `offline`: configs shipped next to this module, usable by name."""
    path = Path(__file__).with_name(f"{name}.yaml")
    return path if name.isidentifier() and path.is_file() else None


# -- the file's schema: strict types (no "1" for 1, no true for 1), finite numbers, no unknown keys --


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class _Plan(_Strict):
    n: PositiveInt | None = None
    stratify: str | None = None
    optional: bool = False


class _Limits(_Strict):
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _some(self) -> _Limits:
        if self.max is None and self.min is None:
            raise ValueError("expected {max: x} and/or {min: y}")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}: nothing can pass")
        return self


class _Flips(_Strict):
    rejudge: NonNegativeInt = 1
    alpha: float = Field(0.05, gt=0, lt=1)
    fail_on_regression: bool = False


def _thresholds_named(value: dict[str, _Limits]) -> dict[str, _Limits]:
    for ref in value:
        if "/" not in ref:
            raise ValueError(f"{ref!r} is not 'task/metric' (globs allowed, e.g. 'mis_*/ASR')")
    return value


class _File(_Strict):
    seed: int = 1234
    judge: str | None = None
    suites: dict[str, Annotated[dict[str, _Plan | None], Field(min_length=1)]] = {}
    thresholds: Annotated[dict[str, _Limits], AfterValidator(_thresholds_named)] = {}
    baseline: str | None = None
    tolerance: dict[str, NonNegativeFloat] = {}
    max_excluded: float = Field(0.05, ge=0, le=1)
    flips: _Flips | None = None


def _problem(e: Mapping[str, Any]) -> str:
    where = ".".join(str(p) for p in e["loc"]) or "(top level)"
    if e["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    message = str(e["msg"]).removeprefix("Value error, ")
    if e["type"] == "finite_number" or (isinstance(e.get("input"), float) and not math.isfinite(e["input"])):
        message = "not a finite number (NaN and infinity are never a limit)"
    shown = repr(e.get("input"))
    return f"{where}: {message} (got {shown[:60]}{'...' if len(shown) > 60 else ''})"


def load_config(path: Path | str | None = None) -> SelftestConfig:
    """A config file, or a bundled one by name (when no such file exists).

    The file is checked against a typed schema, and every problem is reported at once, each
    naming its key: a gate must never run on a config it misread (a threshold of NaN passes
    everything).
    """
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.exists() and (named := bundled(str(path))):
        path = named
    try:
        text = read_text(path)
        raw = yaml.safe_load(text)
    except (UnreadableFile, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read selftest config ({e})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        cfg = _File.model_validate(raw)
    except ValidationError as e:
        problems = [_problem(err) for err in e.errors()]
        known = ", ".join(sorted(_File.model_fields))
        hint = f" (known top-level keys: {known})" if any(": unknown key" in p for p in problems) else ""
        raise ValueError(
            f"{path}: {len(problems)} problem(s) in the selftest config: {'; '.join(problems)}{hint}"
        ) from None
    return SelftestConfig(
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        seed=cfg.seed,
        judge=cfg.judge or None,
        suites={
            name: [
                TaskPlan(task, p.n, p.stratify, p.optional) if p else TaskPlan(task)
                for task, p in tasks.items()
            ]
            for name, tasks in cfg.suites.items()
        },
        thresholds=[Threshold(ref, t.max, t.min) for ref, t in cfg.thresholds.items()],
        baseline=(path.parent / cfg.baseline) if cfg.baseline else None,
        tolerance=dict(cfg.tolerance) or {"default": 2.0},
        max_excluded=cfg.max_excluded,
        flips=FlipConfig(**cfg.flips.model_dump()) if cfg.flips else FlipConfig(),
    )
