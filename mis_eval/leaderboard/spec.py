"""The declarative column spec (columns.yaml): which metric of which task is shown, and which way is better.

Benchmarks are not special-cased in code: a new task only needs a rule in the YAML (or
falls through to the catch-all rule, which shows every metric its runs carry).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

DEFAULT_SPEC = Path(__file__).with_name("columns.yaml")

Better = Literal["lower", "higher"] | None
KINDS = ("safety", "capability", "other", "attribution")  # attribution: own section, not columns
SOURCES = ("mis-eval", "lmms-eval", "any")


@dataclass(frozen=True)
class TaskRule:
    match: str
    kind: str = "other"
    label: str | None = None
    headline: tuple[str, ...] = ("*",)
    source: str = "any"  # YAML key `from`
    lmms_metric: str | None = None
    scale: float = 1.0

    def accepts(self, origin: str) -> bool:
        return self.source == "any" or origin == "reported" or origin == self.source


@dataclass(frozen=True)
class Summary:
    name: str
    better: Better
    tasks: str = "*"
    kind: str | None = None
    metric: str | None = None  # None: the task's first headline metric
    same_judge: bool = True


@dataclass(frozen=True)
class Spec:
    tasks: tuple[TaskRule, ...]
    metric_rules: tuple[tuple[re.Pattern[str], Better], ...]
    summaries: tuple[Summary, ...] = ()
    plot_x: str | None = None
    plot_y: str | None = None
    sort: str | None = None
    _cache: dict[str, TaskRule] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def rule(self, task: str) -> TaskRule:
        if task not in self._cache:
            found = next((r for r in self.tasks if fnmatch.fnmatchcase(task, r.match)), None)
            self._cache[task] = found or TaskRule(match="*")
        return self._cache[task]

    def better(self, metric: str) -> Better:
        return next((b for pat, b in self.metric_rules if pat.search(metric)), None)

    def task_order(self, task: str) -> int:
        return next(
            (i for i, r in enumerate(self.tasks) if fnmatch.fnmatchcase(task, r.match)), len(self.tasks)
        )

    def summary(self, name: str | None) -> Summary | None:
        return next((s for s in self.summaries if s.name == name), None)


def _better(value: Any, where: str) -> Better:
    if value in (None, "none"):
        return None
    if value not in ("lower", "higher"):
        raise ValueError(f"{where}: better must be lower, higher or none, not {value!r}")
    return value


def load_spec(path: Path | str | None = None) -> Spec:
    """Read and validate a column spec; errors name the file and the offending entry."""
    path = Path(path) if path else DEFAULT_SPEC
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read column spec ({e})") from e
    try:
        tasks = []
        for i, t in enumerate(raw.get("tasks", [])):
            where = f"{path}: tasks[{i}]"
            if t.get("kind", "other") not in KINDS or t.get("from", "any") not in SOURCES:
                raise ValueError(f"{where}: kind must be one of {KINDS}, from one of {SOURCES}")
            tasks.append(
                TaskRule(
                    match=str(t["match"]),
                    kind=t.get("kind", "other"),
                    label=t.get("label"),
                    headline=tuple(str(m) for m in t.get("headline") or [t.get("lmms_metric") or "*"]),
                    source=t.get("from", "any"),
                    lmms_metric=t.get("lmms_metric"),
                    scale=float(t.get("scale", 1.0)),
                )
            )
        metric_rules = tuple(
            (re.compile(m["match"]), _better(m.get("better"), f"{path}: metrics[{i}]"))
            for i, m in enumerate(raw.get("metrics", []))
        )
        summaries = tuple(
            Summary(
                name=str(s["name"]),
                better=_better(s.get("better"), f"{path}: summaries[{i}]"),
                tasks=str(s.get("tasks", "*")),
                kind=s.get("kind"),
                metric=s.get("metric"),
                same_judge=bool(s.get("same_judge", True)),
            )
            for i, s in enumerate(raw.get("summaries", []))
        )
    except (KeyError, TypeError, AttributeError, re.error) as e:
        raise ValueError(f"{path}: malformed column spec ({type(e).__name__}: {e})") from e
    plot = raw.get("plot") or {}
    spec = Spec(tuple(tasks), metric_rules, summaries, plot.get("x"), plot.get("y"), raw.get("sort"))
    for name in (spec.plot_x, spec.plot_y):
        if name and not spec.summary(name):
            raise ValueError(f"{path}: plot refers to unknown summary {name!r}")
    return spec
