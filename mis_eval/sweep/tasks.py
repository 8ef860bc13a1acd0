"""The tasks a benchmark group runs, each marked judged (mis-eval writes its run records) or not.

mis-eval's own task folder is read directly (fast, no lmms-eval import); lmms-eval's task index
(about 20 s to build) is asked only about names outside it, so a typo fails the plan before
anything runs instead of failing every job of its group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mis_eval.sweep.plan import Plan, PlanError


@dataclass(frozen=True)
class Leaf:
    name: str
    judged: bool  # a mis-eval benchmark's task: judged into run records; else lmms-eval scores it


def _read_yaml(path: Path) -> Any:
    """A task YAML, its lmms-eval tags (`!function ...`) read as plain values."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    except (OSError, yaml.YAMLError):
        return None


def _members(entries: Any) -> list[str]:
    items = entries if isinstance(entries, list) else [entries]
    return [str(e["task"] if isinstance(e, Mapping) else e) for e in items if e]


@cache
def own_index() -> dict[str, tuple[str, ...] | None]:
    """mis-eval's tasks (None) and groups (their members), from the YAMLs of its task folder."""
    from mis_tasks.discovery import TASKS_DIR

    out: dict[str, tuple[str, ...] | None] = {}
    for path in sorted(Path(TASKS_DIR).rglob("*.yaml")):
        data = _read_yaml(path)
        if not isinstance(data, Mapping):
            continue
        if data.get("group") and data.get("task"):
            out[str(data["group"])] = tuple(_members(data["task"]))
        elif isinstance(data.get("task"), str):
            out[data["task"]] = None
    return out


@cache
def judged_tasks() -> frozenset[str]:
    from mis_tasks.registry import benchmarks

    return frozenset(t for b in benchmarks().values() for t in b.tasks)


class _LmmsIndex:
    """lmms-eval's task index, built on first use."""

    def __init__(self) -> None:
        self._index: dict[str, Any] | None = None

    def get(self, name: str) -> Mapping[str, Any] | None:
        if self._index is None:
            self._index = _build_lmms_index()
        return self._index.get(name)


def _build_lmms_index() -> dict[str, Any]:
    from loguru import logger

    logger.remove()  # lmms-eval logs every YAML it cannot read at DEBUG level
    from lmms_eval.tasks import TaskManager

    return dict(TaskManager("ERROR").task_index)


def expand(plan: Plan) -> dict[str, tuple[Leaf, ...]]:
    """Group -> its leaf tasks, in order, once each; an unknown name is a PlanError naming the key."""
    own, lmms = own_index(), _LmmsIndex()
    judged = judged_tasks()
    out = {}
    for group, names in plan.benchmarks.items():
        leaves: dict[str, Leaf] = {}
        for i, name in enumerate(names):
            where = f"{plan.path}: benchmarks.{group}[{i}]"
            for leaf in _leaves(name, own, lmms, judged, where, ()):
                leaves.setdefault(leaf.name, leaf)
        out[group] = tuple(leaves.values())
    return out


def _leaves(
    name: str,
    own: Mapping[str, tuple[str, ...] | None],
    lmms: _LmmsIndex,
    judged: frozenset[str],
    where: str,
    seen: tuple[str, ...],
) -> Iterable[Leaf]:
    if name in seen:
        raise PlanError(f"{where}: group {name!r} contains itself ({' -> '.join((*seen, name))})")
    if name in own:
        members = own[name]
        if members is None:
            yield Leaf(name, name in judged)
            return
    else:
        entry = lmms.get(name)
        if entry is None:
            raise PlanError(f"{where}: no lmms-eval task or group {name!r} (see `lmms-eval tasks list`)")
        kind = entry.get("type")
        if kind in ("task", "python_task"):
            yield Leaf(name, name in judged)
            return
        if kind == "tag":
            members = tuple(_members(entry.get("task")))
        else:
            data = _read_yaml(Path(str(entry.get("yaml_path"))))
            members = tuple(_members(data.get("task"))) if isinstance(data, Mapping) else ()
        if not members:
            raise PlanError(f"{where}: cannot read the tasks of lmms-eval group {name!r}")
    for member in members:
        yield from _leaves(member, own, lmms, judged, where, (*seen, name))
