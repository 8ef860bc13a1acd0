"""A benchmark's version has one source, its `BENCHMARK.version` (scoring.py); every task YAML of
the benchmark repeats it in `metadata.version` (what lmms-eval prints), and must agree."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mis_tasks.registry import Benchmark, benchmarks


class _TaskYaml(yaml.SafeLoader):
    """lmms-eval's YAML, its `!function` tags read as plain strings."""


_TaskYaml.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def _read(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskYaml) or {}


def yaml_version(path: Path) -> str | None:
    """A task file's metadata.version, its own or that of the template it includes."""
    doc = _read(path)
    version = (doc.get("metadata") or {}).get("version")
    if version is None and doc.get("include"):
        return yaml_version(path.parent / doc["include"])
    return None if version is None else str(version)


def mismatches(folder: Path, version: str) -> list[str]:
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("_*_yaml"))
    return [f"{f.name}: {yaml_version(f)}" for f in files if yaml_version(f) != version]


def _folder(bench: Benchmark) -> Path:
    return Path(str(sys.modules[type(bench).__module__].__file__)).parent


@pytest.mark.parametrize("name", sorted(benchmarks()))
def test_every_task_yaml_has_the_benchmark_version(name: str) -> None:
    bench = benchmarks()[name]
    folder = _folder(bench)
    assert sorted(folder.glob("*.yaml")), f"no task YAML in {folder}"
    assert mismatches(folder, bench.version) == [], f"{name} is version {bench.version}"


def test_a_yaml_left_behind_on_a_version_bump_is_found(tmp_path: Path) -> None:
    (tmp_path / "_default_template_yaml").write_text(
        "process_results: !function utils.f\nmetadata:\n  version: 1.0\n"
    )
    (tmp_path / "a.yaml").write_text("task: a\ninclude: _default_template_yaml\n")
    (tmp_path / "b.yaml").write_text("task: b\ninclude: _default_template_yaml\nmetadata:\n  version: 1.1\n")
    (tmp_path / "c.yaml").write_text("task: c\n")  # no version at all
    assert mismatches(tmp_path, "1.1") == ["a.yaml: 1.0", "c.yaml: None", "_default_template_yaml: 1.0"]
