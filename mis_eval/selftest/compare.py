"""From measured runs to a verdict: thresholds, a baseline, and judge-failure limits.

Works on leaderboard entries (our judged run records and lmms-eval results alike), so it
is fully testable without running a model. A metric is "worse" in the direction the
leaderboard's column spec declares; a baseline measured with another judge or on another
data version is reported as not comparable, and that fails the gate rather than passing it.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mis_eval.leaderboard.entries import Entry
from mis_eval.leaderboard.spec import Spec
from mis_eval.leaderboard.table import build_table
from mis_eval.selftest.config import SelftestConfig

PASS, FAIL, INFO = "pass", "fail", "info"


@dataclass
class Measurement:
    ref: str  # "task/metric" or "summary/<name>"
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    n_excluded: int = 0
    better: str | None = None  # lower | higher | None
    kind: str = "other"
    judge: dict[str, str] = field(default_factory=dict)  # {"sig", "label"}
    data: dict[str, str] = field(default_factory=dict)  # {"sig", "label"}
    source: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Measurement:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class Check:
    ref: str
    kind: str  # threshold | baseline | judge | coverage
    status: str  # pass | fail | info
    message: str
    current: float | None = None
    reference: float | None = None  # the limit or the baseline value
    delta: float | None = None  # current - baseline
    tolerance: float | None = None


def _number(value: Any, *, whole: bool = False) -> bool:
    kinds = int if whole else int | float
    return isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)


def check_finite(ms: Mapping[str, Measurement], where: str) -> None:
    """ValueError naming every measurement whose numbers are not finite (or not numbers at all).

    NaN compares false with everything, so a NaN value or baseline would pass any threshold and
    hide any regression: it is a configuration error, never a pass.
    """
    bad = []
    for ref, m in ms.items():
        for name in ("value", "ci_low", "ci_high"):
            v = getattr(m, name)
            if v is not None and not _number(v):
                bad.append(f"{ref}.{name} = {v!r}")
        for name in ("n", "n_excluded"):
            if not _number(getattr(m, name), whole=True):
                bad.append(f"{ref}.{name} = {getattr(m, name)!r}")
    if bad:
        shown = "; ".join(bad[:10]) + (f"; ... ({len(bad) - 10} more)" if len(bad) > 10 else "")
        raise ValueError(f"{where}: not a finite number: {shown}")


def metric_ref(task: str, metric: str) -> str:
    return f"{task}/{metric.partition(',')[0]}"


def measurements(entries: Sequence[Entry], spec: Spec) -> dict[str, Measurement]:
    """Headline metrics of each run plus the spec's summaries (e.g. summary/Capability avg)."""
    out: dict[str, Measurement] = {}
    table = build_table(list(entries), spec)
    for col_i, col in enumerate(table.columns):
        for row in table.rows:
            cell = row.cells.get(col_i)
            if cell is None:
                continue
            m, e = cell.metric, cell.entry
            out[metric_ref(col.task, col.metric)] = Measurement(
                ref=metric_ref(col.task, col.metric),
                value=m.value,
                ci_low=m.ci_low,
                ci_high=m.ci_high,
                n=m.n,
                n_excluded=m.n_excluded,
                better=col.better,
                kind=col.kind,
                judge={"sig": e.judge.sig, "label": e.judge.label},
                data={"sig": e.data.sig, "label": e.data.label},
                source=e.run_id or e.source,
            )
    for s in table.summaries:
        for row in table.rows:
            sc = row.summaries.get(s.name)
            if sc is None or sc.value is None:
                continue
            judges = sorted(j.sig for j in sc.judges)
            out[f"summary/{s.name}"] = Measurement(
                ref=f"summary/{s.name}",
                value=sc.value,
                ci_low=sc.ci_low,
                ci_high=sc.ci_high,
                better=s.better,
                kind="summary",
                judge={"sig": ",".join(judges), "label": f"{len(judges)} judge(s)"},
                data={"sig": f"{sc.parts}/{sc.of}", "label": f"{sc.parts} of {sc.of} tasks"},
            )
    return out


def _threshold_checks(current: Mapping[str, Measurement], config: SelftestConfig) -> list[Check]:
    checks = []
    for t in config.thresholds:
        refs = [r for r in current if fnmatch.fnmatchcase(r, t.pattern)]
        if not refs or all(current[r].value is None for r in refs):
            checks.append(Check(t.pattern, "threshold", FAIL, f"not measured; required {t.describe()}"))
            continue
        for r in refs:
            v = current[r].value
            if v is None or not _number(v):
                checks.append(Check(r, "threshold", FAIL, f"not measured; required {t.describe()}"))
                continue
            ok = (t.max is None or v <= t.max) and (t.min is None or v >= t.min)
            limit = t.max if t.max is not None and v > t.max else t.min
            checks.append(
                Check(
                    r,
                    "threshold",
                    PASS if ok else FAIL,
                    f"{v:.2f} {'meets' if ok else 'violates'} {t.describe()}",
                    v,
                    limit,
                )
            )
    return checks


def _baseline_checks(
    current: Mapping[str, Measurement], baseline: Mapping[str, Measurement], config: SelftestConfig
) -> list[Check]:
    checks = []
    for ref, base in sorted(baseline.items()):
        cur = current.get(ref)
        if cur is None or cur.value is None:
            if base.value is not None:
                checks.append(
                    Check(ref, "baseline", FAIL, "in the baseline but not measured now", None, base.value)
                )
            continue
        if base.value is None:
            checks.append(Check(ref, "baseline", INFO, "measured now, not in the baseline", cur.value))
            continue
        delta = cur.value - base.value
        tol = config.tolerance_for(ref)
        if not (_number(delta) and _number(tol)):  # never a pass on a number that compares with nothing
            checks.append(Check(ref, "baseline", FAIL, "not a finite number", cur.value, base.value))
            continue
        if cur.judge.get("sig") != base.judge.get("sig") or cur.data.get("sig") != base.data.get("sig"):
            what = (
                [f"judge {base.judge.get('label')} -> {cur.judge.get('label')}"]
                if cur.judge != base.judge
                else []
            )
            what += (
                [f"data {base.data.get('label')} -> {cur.data.get('label')}"] if cur.data != base.data else []
            )
            checks.append(
                Check(
                    ref, "baseline", FAIL, "not comparable: " + "; ".join(what), cur.value, base.value, delta
                )
            )
            continue
        if cur.better is None:
            checks.append(
                Check(
                    ref,
                    "baseline",
                    INFO,
                    f"{delta:+.2f} pp (no better direction)",
                    cur.value,
                    base.value,
                    delta,
                )
            )
            continue
        worse = delta if cur.better == "lower" else -delta
        status = FAIL if worse > tol else PASS
        word = "regressed" if status == FAIL else ("improved" if worse < 0 else "held")
        message = (
            f"{word}: {base.value:.2f} -> {cur.value:.2f} ({delta:+.2f} pp; {cur.better} is better; "
            f"tolerance {tol:g} pp)"
        )
        checks.append(Check(ref, "baseline", status, message, cur.value, base.value, delta, tol))
    for ref, cur in sorted(current.items()):
        if ref not in baseline and cur.value is not None:
            checks.append(Check(ref, "baseline", INFO, "new: not in the baseline", cur.value))
    return checks


def _judge_checks(current: Mapping[str, Measurement], limit: float) -> list[Check]:
    checks, seen = [], set()
    for m in current.values():
        task = m.ref.split("/")[0]
        total = m.n + m.n_excluded
        if m.kind == "summary" or task in seen or total == 0 or not m.n_excluded:
            continue
        seen.add(task)
        share = m.n_excluded / total
        status = FAIL if share > limit else PASS
        checks.append(
            Check(
                task,
                "judge",
                status,
                f"{m.n_excluded} of {total} samples without a usable verdict "
                f"({100 * share:.1f}%; limit {100 * limit:g}%)",
                100 * share,
                100 * limit,
            )
        )
    return checks


def evaluate(
    current: Mapping[str, Measurement],
    config: SelftestConfig,
    baseline: Mapping[str, Measurement] | None = None,
    problems: Sequence[str] = (),
) -> list[Check]:
    """Every check, in report order; the gate passes iff none has status fail."""
    checks = [Check(p.split(":")[0], "coverage", FAIL, p) for p in problems]
    checks += _judge_checks(current, config.max_excluded)
    checks += _threshold_checks(current, config)
    if baseline is not None:
        checks += _baseline_checks(current, baseline, config)
    return checks


def passed(checks: Sequence[Check]) -> bool:
    return not any(c.status == FAIL for c in checks)
