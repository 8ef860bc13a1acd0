"""Reading lmms-eval's `--log_samples` output back into `Sample`s.

lmms-eval 0.7.3 writes `<output>/<time>_samples_<task>.jsonl` (one line per doc, without
the doc itself) next to `<time>_results.json` (model, model args, task configs). Our tasks
log a small item `{"task", "id", "response"}` under each metric; the docs are reloaded
from the data root by id, which re-validates the data the responses were made on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mis_eval.core.samples import Sample
from mis_tasks.common import DataError
from mis_tasks.registry import benchmark_for_task

SAMPLES_RE = re.compile(r"^(?P<stamp>.+?)_samples_(?P<task>.+)\.jsonl$")


@dataclass
class LoggedTask:
    task: str
    samples_path: Path
    results_path: Path | None
    model: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    limit: int | float | None = None  # lmms-eval --limit (a count, or a fraction below 1)


def find_logged_tasks(path: Path | str) -> list[LoggedTask]:
    """Every samples file under `path` (a file or a folder), newest run first per task."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    files = [path] if path.is_file() else sorted(path.rglob("*_samples_*.jsonl"), reverse=True)
    out: list[LoggedTask] = []
    for f in files:
        m = SAMPLES_RE.match(f.name)
        if not m:
            raise DataError(f"{f}: not an lmms-eval samples file (<time>_samples_<task>.jsonl)")
        results = f.with_name(f"{m['stamp']}_results.json")
        logged = LoggedTask(
            task=m["task"], samples_path=f, results_path=results if results.is_file() else None
        )
        if logged.results_path:
            _read_results(logged)
        out.append(logged)
    if not out:
        raise DataError(f"{path}: no lmms-eval samples files (run lmms-eval with --log_samples)")
    return out


def _read_results(logged: LoggedTask) -> None:
    assert logged.results_path is not None
    try:
        data = json.loads(logged.results_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{logged.results_path}: malformed JSON ({e})") from None
    config = data.get("config") or {}
    args = str(config.get("model_args") or "")
    pretrained = re.search(r"(?:^|,)\s*(?:pretrained|model|model_version)=([^,]+)", args)
    logged.model = {
        "name": data.get("model_name")
        or (pretrained.group(1) if pretrained else None)
        or config.get("model"),
        "adapter": config.get("model"),
        "args": args,
    }
    limit = config.get("limit")
    logged.limit = limit if isinstance(limit, int | float) and not isinstance(limit, bool) else None
    task_config = (data.get("configs") or {}).get(logged.task) or {}
    logged.generation = dict(task_config.get("generation_kwargs") or {})


def _item(line: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for value in line.values():
        if isinstance(value, dict) and {"task", "id", "response"} <= value.keys():
            return value
    return None


def iter_logged_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                yield n, json.loads(raw)
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {n}: malformed JSON ({e})") from None


def read_samples(logged: LoggedTask, docs: Mapping[str, dict[str, Any]]) -> list[Sample]:
    """Samples of one logged task, joined with their docs by id; the adapter settings a mis-eval
    model logged with the task's items go to `logged.generation["adapter"]`."""
    samples: list[Sample] = []
    bench = benchmark_for_task(logged.task)  # how its logged responses become samples
    for n, line in iter_logged_lines(logged.samples_path):
        item = _item(line)
        if item is None:
            hint = (
                "lmms-eval skips the tasks' scoring under --predict_only, so such logs cannot be judged: "
                "re-run without it (mis-eval run --no-judge generates without judging)"
                if "filtered_resps" in line or "resps" in line
                else "wrong task?"
            )
            raise DataError(f"{logged.samples_path} line {n}: no mis-eval item (task, id, response); {hint}")
        if isinstance(item.get("generation"), dict):  # what a mis-eval adapter ran with (samples.py)
            logged.generation["adapter"] = dict(item["generation"])
        rid = str(item["id"])
        if rid not in docs:
            raise DataError(
                f"{logged.samples_path} line {n}: record id={rid} is not in the {logged.task} data"
            )
        samples.append(bench.sample(logged.task, int(line.get("doc_id", n - 1)), docs[rid], item["response"]))
    return samples
