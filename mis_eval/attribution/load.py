"""Run records of the MIS variants, grouped so that only comparable runs are ever paired.

A group is one model x split x judge x data version. Runs judged differently (judge id,
model, prompt, verdict-relevant settings) or on another data version (fingerprint, n)
land in different groups and are never paired; a variant run without a `both` run of
its own group is skipped with a message saying why.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mis_eval.attribution.measures import Outcome
from mis_eval.core.files import UnreadableFile, read_json
from mis_eval.core.record import RunRecord, is_run_record
from mis_eval.leaderboard.entries import Key, parse_time
from mis_eval.leaderboard.sources import incomplete_reason, judge_key, record_data_key
from mis_eval.records import read_run_samples
from mis_tasks.mis.variants import DEFAULT, VARIANTS, parse_task


@dataclass
class VariantRun:
    variant: str
    record: RunRecord
    path: Path
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # item id -> usable verdict
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # item id -> record (category, ...)


@dataclass
class Group:
    model: str
    split: str
    judge: Key
    data: Key
    runs: dict[str, VariantRun] = field(default_factory=dict)  # variant -> newest run

    @property
    def label(self) -> str:
        return f"{self.model} · mis_{self.split} · judge {self.judge.label} · {self.data.label}"


@dataclass
class Loaded:
    groups: list[Group] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # skipped runs and files, and why


def _json_files(paths: Iterable[Path]) -> Iterable[Path]:
    for p in paths:
        if p.is_dir():
            yield from (
                f
                for f in sorted(p.rglob("*.json"))
                if not any(part.startswith(".") for part in f.relative_to(p).parts) and not f.is_dir()
            )
        elif p.is_file():
            yield p
        else:
            raise FileNotFoundError(f"{p}: no such results file or folder")


def read_outcomes(run: VariantRun) -> None:
    """Fill `outcomes` and `docs` from the run's per-sample file (failed or unjudged items stay out)."""
    for row in read_run_samples(run.path, run.record):
        item = str(row["doc"].get("id"))
        run.docs[item] = row["doc"]
        verdict = row["verdicts"].get("mis")
        if not isinstance(verdict, dict):
            continue
        if verdict.get("status") == "ok" and verdict.get("label") in ("safe", "unsafe"):
            perception = verdict.get("perception")
            run.outcomes[item] = Outcome(
                verdict["label"] == "unsafe", perception if isinstance(perception, int | None) else None
            )


def _candidate(path: Path, messages: list[str]) -> tuple[tuple[str, ...], VariantRun, Key, Key] | None:
    try:
        data = read_json(path)
    except UnreadableFile as e:
        messages.append(f"{e}, skipped")
        return None
    if not is_run_record(data):
        return None  # lmms-eval results and other files: not ours to read
    try:
        rec = RunRecord.from_dict(data)
        if rec.task.benchmark != "mis":
            return None
        split, variant = parse_task(rec.task.name)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        messages.append(f"{path}: not an MIS run record ({e}), skipped")
        return None
    if incomplete := incomplete_reason(rec):  # its rates describe a biased subset: never paired
        messages.append(f"{path}: {incomplete}, skipped")
        return None
    recorded = rec.task.extra.get("variant", DEFAULT)
    if recorded != variant:
        messages.append(f"{path}: task {rec.task.name} but recorded variant {recorded!r}, skipped")
        return None
    judge, data_key = judge_key(rec.judge), record_data_key(rec.task)
    key = (rec.model.name, split, judge.sig, data_key.sig, variant)
    return key, VariantRun(variant, rec, path), judge, data_key


def load_groups(paths: Sequence[Path | str], models: Sequence[str] = ()) -> Loaded:
    """Groups of paired-able runs under `paths` (folders searched recursively, or run-record files)."""
    out = Loaded()
    newest: dict[tuple[str, ...], tuple[VariantRun, Key, Key]] = {}
    for path in _json_files(Path(p) for p in paths):
        found = _candidate(path, out.messages)
        if found is None:
            continue
        key, run, judge, data = found
        if models and not any(fnmatch.fnmatchcase(key[0], m) for m in models):
            continue
        old = newest.get(key)
        when = (parse_time(run.record.finished_at), str(run.path))
        if old is None or when > (parse_time(old[0].record.finished_at), str(old[0].path)):
            newest[key] = (run, judge, data)
    by_split: dict[tuple[str, str], dict[tuple[str, str], Group]] = defaultdict(dict)
    for (model, split, jsig, dsig, variant), (run, judge, data) in sorted(newest.items()):
        group = by_split[(model, split)].setdefault((jsig, dsig), Group(model, split, judge, data))
        group.runs[variant] = run
    for (model, split), subgroups in sorted(by_split.items()):
        for group in subgroups.values():
            others = sorted(v for v in group.runs if v != DEFAULT)
            if not others:
                continue  # a paper run alone: nothing to attribute
            if DEFAULT not in group.runs:
                tasks = ", ".join(group.runs[v].record.task.name for v in others)
                out.messages.append(
                    f"{model}: {tasks} (judge {group.judge.label}; {group.data.label}) not paired: "
                    f"no mis_{split} run with the same judge and data version"
                    + (" (there is one judged differently or on other data)" if len(subgroups) > 1 else "")
                )
                continue
            try:
                for run in group.runs.values():
                    read_outcomes(run)
            except UnreadableFile as e:
                out.messages.append(f"{group.label}: not paired: {e}")
                continue
            out.groups.append(group)
    return out


def variant_order(variants: Iterable[str]) -> list[str]:
    return [v for v in VARIANTS if v in set(variants)]
