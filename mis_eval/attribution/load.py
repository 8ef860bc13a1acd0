"""Run records of attribution variants, grouped so that only comparable runs are ever paired.

Any benchmark with an `attribution` design (mis_tasks.registry.AttributionDesign: MIS, and
MIR-SafetyBench per relation task) is read. A group is one benchmark x model x split x judge x
data version. Runs judged differently (judge id, model, prompt, verdict-relevant settings) or on
another data version (fingerprint, number of items) land in different groups and are never
paired; a variant run without a paper-task run of its own group is skipped with a message saying why.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mis_eval.attribution.measures import Outcome
from mis_eval.core.files import UnreadableFile, read_json
from mis_eval.core.record import RunRecord, is_run_record
from mis_eval.leaderboard.entries import Key, parse_time
from mis_eval.leaderboard.sources import incomplete_reason, judge_key, record_data_key
from mis_eval.records import read_run_samples
from mis_tasks.registry import AttributionDesign, benchmarks


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
    design: AttributionDesign | None = None  # the benchmark's (None: MIS's, for groups built by hand)

    @property
    def plan(self) -> AttributionDesign:
        return self.design or mis_design()

    @property
    def task(self) -> str:
        """The paper task the variants pair with ("mis_hard", "mir_analogy")."""
        return self.plan.paper_task(self.split)

    @property
    def label(self) -> str:
        return f"{self.model} · {self.task} · judge {self.judge.label} · {self.data.label}"


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


def mis_design() -> AttributionDesign:
    design = benchmarks()["mis"].attribution
    assert design is not None
    return design


def read_outcomes(run: VariantRun, design: AttributionDesign | None = None) -> None:
    """Fill `outcomes` and `docs` from the run's per-sample file (failed or unjudged items stay out).

    Samples are items by their doc's `item_id` (else `id`). An item with several samples (MIR's
    `single`: one per image) is unsafe when any of them is, and usable only when all of them are.
    """
    key = (design or mis_design()).verdict
    seen: dict[str, list[Outcome | None]] = {}
    for row in read_run_samples(run.path, run.record):
        doc = row["doc"]
        item = str(doc.get("item_id", doc.get("id")))
        run.docs.setdefault(item, doc)
        verdict = row["verdicts"].get(key)
        usable = (
            isinstance(verdict, dict)
            and verdict.get("status") == "ok"
            and verdict.get("label") in ("safe", "unsafe")
        )
        outcome = None
        if usable:
            assert isinstance(verdict, dict)
            perception = verdict.get("perception")
            outcome = Outcome(
                verdict["label"] == "unsafe", perception if isinstance(perception, int | None) else None
            )
        seen.setdefault(item, []).append(outcome)
    for item, found in seen.items():
        if len(found) == 1 and found[0] is not None:
            run.outcomes[item] = found[0]
        elif found and all(o is not None for o in found):
            run.outcomes[item] = Outcome(any(o.unsafe for o in found if o is not None))


def _candidate(
    path: Path, messages: list[str]
) -> tuple[tuple[str, ...], VariantRun, Key, Key, AttributionDesign] | None:
    try:
        data = read_json(path)
    except UnreadableFile as e:
        messages.append(f"{e}, skipped")
        return None
    if not is_run_record(data):
        return None  # lmms-eval results and other files: not ours to read
    try:
        rec = RunRecord.from_dict(data)
        bench = benchmarks().get(rec.task.benchmark)
        design = bench.attribution if bench is not None else None
        if design is None or rec.task.name in (bench.pooled if bench else {}):
            return None
        split, variant = design.parse_task(rec.task.name)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        bench_name = (data.get("task") or {}).get("benchmark") if isinstance(data.get("task"), dict) else None
        messages.append(f"{path}: not an attribution run record of {bench_name} ({e}), skipped")
        return None
    if incomplete := incomplete_reason(rec):  # its rates describe a biased subset: never paired
        messages.append(f"{path}: {incomplete}, skipped")
        return None
    recorded = rec.task.extra.get("variant", design.default)
    if recorded != variant:
        messages.append(f"{path}: task {rec.task.name} but recorded variant {recorded!r}, skipped")
        return None
    # the data version of the items: a variant with a sample per image (MIR `single`) has more samples
    try:
        items = int(rec.task.extra.get("items", rec.task.data.n))
    except (TypeError, ValueError):
        messages.append(f"{path}: task.items {rec.task.extra.get('items')!r} is no count, skipped")
        return None
    judge = judge_key(rec.judge)
    data_key = record_data_key(replace(rec.task, data=replace(rec.task.data, n=items)))
    key = (rec.task.benchmark, rec.model.name, split, judge.sig, data_key.sig, variant)
    return key, VariantRun(variant, rec, path), judge, data_key, design


def load_groups(paths: Sequence[Path | str], models: Sequence[str] = ()) -> Loaded:
    """Groups of paired-able runs under `paths` (folders searched recursively, or run-record files)."""
    out = Loaded()
    newest: dict[tuple[str, ...], tuple[VariantRun, Key, Key, AttributionDesign]] = {}
    for path in _json_files(Path(p) for p in paths):
        found = _candidate(path, out.messages)
        if found is None:
            continue
        key, run, judge, data, design = found
        if models and not any(fnmatch.fnmatchcase(key[1], m) for m in models):
            continue
        old = newest.get(key)
        when = (parse_time(run.record.finished_at), str(run.path))
        if old is None or when > (parse_time(old[0].record.finished_at), str(old[0].path)):
            newest[key] = (run, judge, data, design)
    by_split: dict[tuple[str, str, str], dict[tuple[str, str], Group]] = defaultdict(dict)
    for (bench, model, split, jsig, dsig, variant), (run, judge, data, design) in sorted(
        newest.items(), key=lambda kv: kv[0]
    ):
        group = by_split[(bench, model, split)].setdefault(
            (jsig, dsig), Group(model, split, judge, data, design=design)
        )
        group.runs[variant] = run
    for (_, model, _split), subgroups in sorted(by_split.items()):
        for group in subgroups.values():
            default = group.plan.default
            others = sorted(v for v in group.runs if v != default)
            if not others:
                continue  # a paper run alone: nothing to attribute
            if default not in group.runs:
                tasks = ", ".join(group.runs[v].record.task.name for v in others)
                out.messages.append(
                    f"{model}: {tasks} (judge {group.judge.label}; {group.data.label}) not paired: "
                    f"no {group.task} run with the same judge and data version"
                    + (" (there is one judged differently or on other data)" if len(subgroups) > 1 else "")
                )
                continue
            try:
                for run in group.runs.values():
                    read_outcomes(run, group.plan)
            except UnreadableFile as e:
                out.messages.append(f"{group.label}: not paired: {e}")
                continue
            out.groups.append(group)
    return out


def paper_task_of(task: str) -> str:
    """The paper task an attribution variant pairs with (`mis_hard_first` -> `mis_hard`,
    `mir_analogy_single` -> `mir_analogy`); any other name unchanged.

    Used where item selection is seeded by task name (selftest subsets): every variant of a task
    must draw the same items, or nothing can be paired.
    """
    for bench in benchmarks().values():
        design = bench.attribution
        if design is None:
            continue
        try:
            return design.paper_task(design.parse_task(task)[0])
        except ValueError:
            continue
    return task


def variant_order(variants: Iterable[str], design: AttributionDesign | None = None) -> list[str]:
    present = set(variants)
    return [v for v in (design or mis_design()).variants if v in present]
