"""Reading lmms-eval's `--log_samples` output back into `Sample`s.

lmms-eval 0.7.3 writes `<output>/<time>_samples_<task>.jsonl` (one line per doc, with the
doc minus its images) next to `<time>_results.json` (model, model args, task configs). Our
tasks log a small item `{"task", "id", "response"}` under each metric; the docs are reloaded
from the data root by id, which re-validates the data the responses were made on. A log is
untrusted input (it can be edited, renamed, concatenated): its items must name its task, their
records must be that task's (the logged doc's data version included), and each record must
appear once, or nothing is judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mis_eval.core.defaults import DUPLICATES
from mis_eval.core.files import UnreadableFile, parse_json, read_json, why
from mis_eval.core.samples import Sample, repeated
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
    duplicates: dict[str, Any] = field(default_factory=dict)  # lines left out under --duplicates first|last
    notes: list[str] = field(default_factory=list)  # for the run record: what reading the log changed


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
    data = read_json(logged.results_path)
    if not isinstance(data, dict):
        raise DataError(f"{logged.results_path}: expected a JSON object, got {type(data).__name__}")
    config = _object(data, "config", logged.results_path)
    args = str(config.get("model_args") or "")
    pretrained = re.search(r"(?:^|,)\s*(?:pretrained|model|model_version)=([^,]+)", args)
    name = data.get("model_name") or (pretrained.group(1) if pretrained else None) or config.get("model")
    logged.model = {
        "name": str(name) if name is not None else "unknown",
        "adapter": str(config.get("model") or ""),
        "args": args,
    }
    limit = config.get("limit")
    logged.limit = limit if isinstance(limit, int | float) and not isinstance(limit, bool) else None
    configs = _object(data, "configs", logged.results_path)
    task_config = configs.get(logged.task) or {}
    kwargs = task_config.get("generation_kwargs") if isinstance(task_config, dict) else None
    logged.generation = dict(kwargs) if isinstance(kwargs, dict) else {}


def _object(data: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise DataError(f"{path}: {key} should be an object, got {type(value).__name__}")
    return value


def _item(line: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for value in line.values():
        if isinstance(value, dict) and {"task", "id", "response"} <= value.keys():
            return value
    return None


def iter_logged_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-empty line; DataError naming the file and line for anything else
    (malformed, not UTF-8, nested too deeply, not an object)."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({why(e)})") from None
    with f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                line = parse_json(raw, f"{path} line {n}")
            except UnreadableFile as e:
                raise DataError(str(e)) from None
            if not isinstance(line, dict):
                raise DataError(f"{path} line {n}: expected a JSON object, got {type(line).__name__}")
            yield n, line


@dataclass
class _Logged:
    """One line's mis-eval item, before it is trusted."""

    line: int
    doc_id: int
    rid: str
    item: Mapping[str, Any]
    doc: Mapping[str, Any] | None  # the record as lmms-eval logged it (0.7.3 logs it), if any


def _listing(entries: Sequence[str], limit: int = 10) -> str:
    shown = "; ".join(entries[:limit])
    return shown + (f"; ... ({len(entries) - limit} more)" if len(entries) > limit else "")


def _check_tasks(logged: LoggedTask, lines: Sequence[_Logged]) -> None:
    """Every item (and the doc logged with it) names the task the log is judged as."""
    wrong = []
    for e in lines:
        named = {str(e.item.get("task"))}
        if e.doc is not None and "task" in e.doc:
            named.add(str(e.doc["task"]))
        if named != {logged.task}:
            wrong.append(f"line {e.line} (id={e.rid}) names {', '.join(sorted(named - {logged.task}))}")
    if wrong:
        raise DataError(
            f"{logged.samples_path}: items of another task than {logged.task} (the task its file name "
            f"says), so they would be judged against the wrong questions: {_listing(wrong)}"
        )


def _check_docs(logged: LoggedTask, lines: Sequence[_Logged], docs: Mapping[str, dict[str, Any]]) -> None:
    """Each item's record is in the task's data, and the doc lmms-eval logged is that record."""
    missing = [f"line {e.line}: record id={e.rid}" for e in lines if e.rid not in docs]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise DataError(f"{logged.samples_path}: {_listing(missing)} {verb} not in the {logged.task} data")
    differ = []
    for e in lines:
        if e.doc is None:
            continue
        ours = docs[e.rid]
        if "id" in e.doc and str(e.doc["id"]) != e.rid:
            differ.append(f"line {e.line}: item id={e.rid} but its doc has id={e.doc['id']}")
            continue
        theirs, mine = e.doc.get("data_fingerprint"), ours.get("data_fingerprint")
        if theirs is not None and mine is not None and str(theirs) != str(mine):
            differ.append(f"line {e.line} (id={e.rid}): data version {theirs} in the log, {mine} in the data")
    if differ:
        raise DataError(
            f"{logged.samples_path}: the logged records are not the {logged.task} data they would be "
            f"judged against (the responses were made on other data; judge them with that data root): "
            f"{_listing(differ)}"
        )


def _dedupe(logged: LoggedTask, lines: list[_Logged], policy: str) -> list[_Logged]:
    """The lines to judge: every record once. Duplicates are an error unless `policy` says which
    line of each to keep (first / last), which the run record then says."""
    dups = repeated(e.rid for e in lines)
    if not dups:
        return lines
    if policy not in DUPLICATES:
        raise ValueError(f"duplicates policy {policy!r}: expected one of {', '.join(DUPLICATES)}")
    if policy == "error":
        found = [
            f"id={rid} (doc_id {', '.join(sorted({str(lines[i].doc_id) for i in at}))}) "
            f"on lines {', '.join(str(lines[i].line) for i in at)}"
            for rid, at in dups.items()
        ]
        raise DataError(
            f"{logged.samples_path}: duplicate samples ({sum(map(len, dups.values())) - len(dups)} extra "
            f"line(s) for {len(dups)} record(s)), each would be counted once per line: {_listing(found)}; "
            "a log has one line per record: pass --duplicates first|last to keep one of each"
        )
    drop = {i for at in dups.values() for i in (at[1:] if policy == "first" else at[:-1])}
    kept = [e for i, e in enumerate(lines) if i not in drop]
    ids = ", ".join(sorted(dups, key=lambda r: (len(r), r)))
    logged.duplicates = {"policy": policy, "lines_dropped": len(drop), "ids": sorted(dups)}
    logged.notes.append(
        f"duplicate samples in {logged.samples_path.name}: {len(drop)} line(s) for record id(s) {ids} "
        f"left out, the {policy} line of each kept (--duplicates {policy})"
    )
    return kept


def read_samples(
    logged: LoggedTask, docs: Mapping[str, dict[str, Any]], *, duplicates: str = "error"
) -> list[Sample]:
    """Samples of one logged task, joined with their docs by id; the adapter settings a mis-eval
    model logged with the task's items go to `logged.generation["adapter"]`.

    A log is untrusted input: every item must name this task, its record must be in the task's
    data (and be the record lmms-eval logged with it), and each record must appear once
    (`duplicates`: error, or keep the first / last line of each).
    """
    bench = benchmark_for_task(logged.task)  # how its logged responses become samples
    lines: list[_Logged] = []
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
        doc_id = line.get("doc_id", n - 1)
        if isinstance(doc_id, bool) or not isinstance(doc_id, int):
            raise DataError(
                f"{logged.samples_path} line {n}: doc_id should be a whole number, got {doc_id!r}"
            )
        if isinstance(item["id"], dict | list) or item["id"] is None:
            raise DataError(f"{logged.samples_path} line {n}: record id should be text or a number")
        doc = line.get("doc")
        lines.append(_Logged(n, doc_id, str(item["id"]), item, doc if isinstance(doc, dict) else None))
    _check_tasks(logged, lines)
    _check_docs(logged, lines, docs)
    samples: list[Sample] = []
    for e in _dedupe(logged, lines, duplicates):
        if isinstance(e.item.get("generation"), dict):  # what a mis-eval adapter ran with (samples.py)
            logged.generation["adapter"] = dict(e.item["generation"])
        samples.append(bench.sample(logged.task, e.doc_id, docs[e.rid], e.item["response"]))
    return samples
