"""The selftest configuration (YAML or JSON): suites, thresholds, baseline, tolerances.

Every error names the file and the entry, so a release pipeline fails with a message a
person can act on rather than a traceback.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
_TOP = {"seed", "judge", "suites", "thresholds", "baseline", "tolerance", "max_excluded", "flips"}


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


def _flips(raw: Any, where: str) -> FlipConfig:
    raw = raw or {}
    if not isinstance(raw, dict) or set(raw) - {"rejudge", "alpha", "fail_on_regression"}:
        raise ValueError(f"{where}: expected {{rejudge, alpha, fail_on_regression}}, got {raw!r}")
    rejudge = raw.get("rejudge", 1)
    if isinstance(rejudge, bool) or not isinstance(rejudge, int) or rejudge < 0:
        raise ValueError(f"{where}.rejudge: expected a whole number >= 0, got {rejudge!r}")
    alpha = _num(raw.get("alpha", 0.05), f"{where}.alpha")
    if not 0 < alpha < 1:
        raise ValueError(f"{where}.alpha: expected a number between 0 and 1, got {alpha!r}")
    fail = raw.get("fail_on_regression", False)
    if not isinstance(fail, bool):
        raise ValueError(f"{where}.fail_on_regression: expected true or false, got {fail!r}")
    return FlipConfig(rejudge, alpha, fail)


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


def _num(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _plan(task: str, raw: Any, where: str) -> TaskPlan:
    raw = raw or {}
    if not isinstance(raw, dict) or set(raw) - {"n", "stratify", "optional"}:
        raise ValueError(f"{where}: expected {{n, stratify, optional}}, got {raw!r}")
    n = raw.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"{where}: n must be a positive integer, got {n!r}")
    return TaskPlan(task, n, raw.get("stratify"), bool(raw.get("optional", False)))


def bundled(name: str) -> Path | None:
    """`default` / `offline`: configs shipped next to this module, usable by name."""
    path = Path(__file__).with_name(f"{name}.yaml")
    return path if name.isidentifier() and path.is_file() else None


def load_config(path: Path | str | None = None) -> SelftestConfig:
    """A config file, or a bundled one by name (when no such file exists)."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.exists() and (named := bundled(str(path))):
        path = named
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read selftest config ({e})") from e
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    if unknown := set(raw) - _TOP:
        raise ValueError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_TOP))}"
        )
    suites = {}
    for name, tasks in (raw.get("suites") or {}).items():
        if not isinstance(tasks, dict) or not tasks:
            raise ValueError(f"{path}: suites.{name} must map task names to settings")
        suites[str(name)] = [_plan(str(t), v, f"{path}: suites.{name}.{t}") for t, v in tasks.items()]
    thresholds = []
    for ref, limits in (raw.get("thresholds") or {}).items():
        where = f"{path}: thresholds.{ref}"
        if "/" not in str(ref) or not isinstance(limits, dict) or not limits or set(limits) - {"max", "min"}:
            raise ValueError(f"{where}: expected 'task/metric': {{max: x}} and/or {{min: y}}")
        thresholds.append(
            Threshold(
                str(ref),
                _num(limits["max"], where) if "max" in limits else None,
                _num(limits["min"], where) if "min" in limits else None,
            )
        )
    tolerance = {str(k): _num(v, f"{path}: tolerance.{k}") for k, v in (raw.get("tolerance") or {}).items()}
    baseline = raw.get("baseline")
    return SelftestConfig(
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        seed=int(raw.get("seed", 1234)),
        judge=raw.get("judge") or None,
        suites=suites,
        thresholds=thresholds,
        baseline=(path.parent / baseline) if baseline else None,
        tolerance=tolerance or {"default": 2.0},
        max_excluded=_num(raw.get("max_excluded", 0.05), f"{path}: max_excluded"),
        flips=_flips(raw.get("flips"), f"{path}: flips"),
    )
