"""From entries to the leaderboard table: pick runs, lay out columns, compute summaries.

A column is one (task, metric, judge, data version). Two runs of the same task judged
differently land in two columns (both flagged), so their numbers are never averaged or
silently compared as if they were one measurement.
"""

from __future__ import annotations

import fnmatch
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mis_eval.core.defaults import LEADERBOARD_KEEP as KEEP
from mis_eval.core.record import Metric
from mis_eval.leaderboard.entries import Entry, Key
from mis_eval.leaderboard.spec import Better, Spec, Summary


@dataclass
class Column:
    task: str
    metric: str
    judge: Key
    data: Key
    kind: str
    better: Better
    group: str  # task label shown above the metric
    conflict: bool = False  # the same task and metric also appear under another judge / data version

    @property
    def label(self) -> str:
        name, _, flt = self.metric.partition(",")
        return name if flt in ("", "none") else f"{name} ({flt})"


@dataclass
class Cell:
    metric: Metric
    entry: Entry


@dataclass
class SummaryCell:
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    parts: int = 0
    of: int = 0
    flag: str = ""  # why the value is missing or should be read with care
    judges: tuple[Key, ...] = ()


@dataclass
class Row:
    model: str
    origin: str  # measured | reported
    cells: dict[int, Cell] = field(default_factory=dict)  # column index -> cell
    summaries: dict[str, SummaryCell] = field(default_factory=dict)


@dataclass
class Table:
    columns: list[Column]
    rows: list[Row]
    summaries: list[Summary]
    summary_conflicts: dict[str, bool]  # summary name -> its rows come from different judges
    judges: list[Key]  # legend order: J1, J2, ...
    data: list[Key]  # legend order: D1, D2, ...
    sort: str | None

    def judge_ref(self, key: Key) -> str:
        return f"J{self.judges.index(key) + 1}"

    def data_ref(self, key: Key) -> str:
        return f"D{self.data.index(key) + 1}"


def select(
    entries: Iterable[Entry],
    *,
    keep: str = "newest",
    pins: Sequence[str] = (),
    models: Sequence[str] = (),
    tasks: Sequence[str] = (),
    judge: str | None = None,
) -> list[Entry]:
    """The runs the table shows: newest per model x task (or per model x task x judge x data)."""
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {KEEP}, not {keep!r}")
    groups: dict[tuple[str, ...], list[Entry]] = defaultdict(list)
    for e in entries:
        if models and not any(fnmatch.fnmatchcase(e.model, m) for m in models):
            continue
        if tasks and not any(fnmatch.fnmatchcase(e.task, t) for t in tasks):
            continue
        if (
            judge
            and e.origin == "mis-eval"
            and judge.lower() not in f"{e.judge.label} {e.judge.detail}".lower()
        ):
            continue
        key = (e.model, e.task, "reported" if e.origin == "reported" else "measured")
        groups[key + ((e.judge.sig, e.data.sig) if keep == "per-judge" else ())].append(e)
    chosen = []
    for group in groups.values():
        pinned = [e for e in group if e.run_id in pins or e.source in pins]
        chosen.append(max(pinned or group, key=lambda e: (e.finished_at, e.source)))
    return chosen


def _headline(spec: Spec, e: Entry) -> list[str]:
    wanted = spec.rule(e.task).headline
    if "*" in wanted:
        return sorted(e.metrics)
    present = [m for m in wanted if m in e.metrics]
    return present or sorted(e.metrics)  # nothing listed is there: show what the run has


def build_table(entries: Sequence[Entry], spec: Spec, sort: str | None = None) -> Table:
    columns: dict[tuple[str, str, str, str], Column] = {}
    placed: list[tuple[tuple[str, str, str, str], Entry, str]] = []
    for e in (e for e in entries if e.origin != "reported"):
        rule = spec.rule(e.task)
        for m in _headline(spec, e):
            ck = (e.task, m, e.judge.sig, e.data.sig)
            columns.setdefault(
                ck, Column(e.task, m, e.judge, e.data, rule.kind, spec.better(m), rule.label or e.task)
            )
            placed.append((ck, e, m))
    counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for ck, _, _ in placed:
        counts[ck] += 1
    for e in (e for e in entries if e.origin == "reported"):
        rule = spec.rule(e.task)
        for m in _headline(spec, e):
            # Published numbers share a column only with runs judged the paper's way (same judge,
            # paper mode): never with a hardened-mode or approximate judge.
            same = [ck for ck in columns if ck[:2] == (e.task, m) and columns[ck].judge.paper]
            ck = max(same, key=lambda k: counts[k]) if same else (e.task, m, e.judge.sig, e.data.sig)
            columns.setdefault(
                ck, Column(e.task, m, e.judge, e.data, rule.kind, spec.better(m), rule.label or e.task)
            )
            placed.append((ck, e, m))
    per_metric: dict[tuple[str, str], int] = defaultdict(int)
    for ck in columns:
        per_metric[ck[:2]] += 1
    head_pos = {}
    for ck in columns:
        rule = spec.rule(ck[0])
        head_pos[ck] = rule.headline.index(ck[1]) if ck[1] in rule.headline else len(rule.headline)
    order = sorted(
        columns, key=lambda k: (spec.task_order(k[0]), k[0], -counts[k], k[2], k[3], head_pos[k], k[1])
    )
    cols = [columns[k] for k in order]
    index = {k: i for i, k in enumerate(order)}
    for k, c in columns.items():
        c.conflict = per_metric[k[:2]] > 1
    rows: dict[tuple[str, str], Row] = {}
    for ck, e, m in placed:
        origin = "reported" if e.origin == "reported" else "measured"
        row = rows.setdefault((e.model, origin), Row(e.model, origin))
        row.cells[index[ck]] = Cell(e.metrics[m], e)
    table = Table(cols, list(rows.values()), list(spec.summaries), {}, [], [], sort or spec.sort)
    _summarise(table, spec)
    _legend(table)
    _sort(table)
    return table


def _summary_columns(table: Table, spec: Spec, s: Summary) -> list[int]:
    out = []
    for i, c in enumerate(table.columns):
        if (s.kind and c.kind != s.kind) or not fnmatch.fnmatchcase(c.task, s.tasks):
            continue
        metric = s.metric or spec.rule(c.task).headline[0]
        if c.metric == metric:
            out.append(i)
    return out


def _summarise(table: Table, spec: Spec) -> None:
    for s in table.summaries:
        idx = _summary_columns(table, spec, s)
        of = len({table.columns[i].task for i in idx})
        judges_seen: set[Key] = set()
        for row in table.rows:
            cells = [row.cells[i] for i in idx if i in row.cells and row.cells[i].metric.value is not None]
            if not cells:
                continue
            judges = tuple(dict.fromkeys(c.entry.judge for c in cells))
            families = {c.entry.data.family for c in cells}
            tasks = {c.entry.task for c in cells}
            cell = SummaryCell(None, parts=len(tasks), of=of, judges=judges)
            if s.same_judge and (len(judges) > 1 or len(families) > 1 or len(tasks) < len(cells)):
                cell.flag = "not averaged: the runs used different judges or data versions"
            else:
                cell.value = round(sum(float(c.metric.value or 0.0) for c in cells) / len(cells), 4)
                if len(cells) == 1:
                    cell.ci_low, cell.ci_high = cells[0].metric.ci_low, cells[0].metric.ci_high
                notes = [f"partial: {len(tasks)} of {of} tasks"] if len(tasks) < of else []
                notes += [
                    f"includes {kind} runs"
                    for kind in ("limited", "incomplete")
                    if any(n.startswith(kind) for c in cells for n in c.entry.notes)
                ]
                cell.flag = "; ".join(notes)
                if s.same_judge:
                    judges_seen.update(judges)
            row.summaries[s.name] = cell
        table.summary_conflicts[s.name] = len(judges_seen) > 1


def _legend(table: Table) -> None:
    judges: dict[Key, None] = {}
    data: dict[Key, None] = {}
    for c in table.columns:
        judges.setdefault(c.judge)
        data.setdefault(c.data)
    for row in table.rows:
        for cell in row.cells.values():
            judges.setdefault(cell.entry.judge)
            data.setdefault(cell.entry.data)
    table.judges, table.data = list(judges), list(data)


def sort_value(table: Table, row: Row, name: str | None) -> tuple[int, float]:
    """Sort key for a summary name or a "task/metric"; missing values last."""
    value: float | None = None
    better: Better = "higher"
    s = next((s for s in table.summaries if s.name == name), None)
    if s is not None:
        value, better = row.summaries.get(s.name, SummaryCell(None)).value, s.better
    elif name is not None and "/" in name:  # "task/metric": the first column showing it
        col = next(
            (i for i, c in enumerate(table.columns) if f"{c.task}/{c.metric.partition(',')[0]}" == name), None
        )
        cell = row.cells.get(col) if col is not None else None
        value = cell.metric.value if cell else None
        better = table.columns[col].better if col is not None else "higher"
    if value is None or math.isnan(value):
        return (1, 0.0)
    return (0, value if better == "lower" else -value)


def _sort(table: Table) -> None:
    table.rows.sort(
        key=lambda r: (r.origin != "measured", *sort_value(table, r, table.sort), r.model.lower())
    )
