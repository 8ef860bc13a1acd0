"""The report card: report.json (machine-readable, also the next run's baseline) and report.html.

Model arguments may carry secrets (api_key=..., token=...): their values are redacted
before anything is written. The HTML is rendered with autoescape and a script-free CSP.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mis_eval.core.files import UnreadableFile, atomic_write, read_json
from mis_eval.core.record import utc_now
from mis_eval.display import html_environment
from mis_eval.selftest.compare import FAIL, Check, Measurement, check_finite, passed

SCHEMA = "mis-eval.selftest/1"
HERE = Path(__file__).parent
_SECRET = re.compile(r"(?i)(key|token|secret|password|passwd|auth)")


def redact_args(args: str) -> str:
    """`a=1,api_key=sk-..` -> `a=1,api_key=***`."""
    parts = []
    for part in (args or "").split(","):
        k, eq, v = part.partition("=")
        parts.append(f"{k}=***" if eq and _SECRET.search(k) else part)
    return ",".join(parts)


@dataclass
class Card:
    model: dict[str, str]
    suite: str
    judge: str
    config: dict[str, Any]
    measurements: dict[str, Measurement]
    checks: list[Check]
    notes: list[str] = field(default_factory=list)
    subsets: dict[str, str] = field(default_factory=dict)  # task -> "kept n of N, stratified by ..."
    baseline: dict[str, Any] | None = None  # {"file", "model", "finished_at"}
    runs: list[str] = field(default_factory=list)
    run_records: list[str] = field(default_factory=list)  # judged records with per-sample files (absolute)
    flips: dict[str, Any] | None = None  # the flip report against the baseline (selftest/flips.py)
    viewer: str | None = None  # the sample viewer page, relative to report.html
    started_at: str = field(default_factory=utc_now)
    finished_at: str = field(default_factory=utc_now)

    @property
    def passed(self) -> bool:
        return passed(self.checks)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["measurements"] = {k: asdict(v) for k, v in self.measurements.items()}
        return {"schema": SCHEMA, "verdict": "pass" if self.passed else "fail", **d}


def read_baseline(path: Path | str) -> tuple[dict[str, Measurement], dict[str, Any]]:
    """Measurements of a previous report.json, and who/when it was."""
    path = Path(path)
    try:
        data = read_json(path)
    except UnreadableFile as e:
        raise ValueError(f"baseline {e}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(
            f"baseline {path}: not a selftest report ({SCHEMA}); got schema {data.get('schema')!r}"
            if isinstance(data, dict)
            else f"baseline {path}: not a selftest report"
        )
    try:
        ms = {str(k): Measurement.from_dict(v) for k, v in data["measurements"].items()}
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"baseline {path}: malformed measurements ({e})") from e
    check_finite(ms, f"baseline {path}: measurements")
    meta = {
        "file": str(path),
        "model": (data.get("model") or {}).get("name"),
        "finished_at": data.get("finished_at"),
        "suite": data.get("suite"),
        "run_records": data.get("run_records") or [],
    }
    return ms, meta


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def write_card(card: Card, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "html": out_dir / "report.html"}
    atomic_write(
        paths["json"], json.dumps(card.to_dict(), indent=2, ensure_ascii=False, allow_nan=False, default=str)
    )
    env = html_environment(HERE)
    rows = [
        {
            **asdict(m),
            "value_s": _fmt(m.value),
            "ci_s": "" if m.ci_low is None or m.ci_high is None else f"[{m.ci_low:.1f}, {m.ci_high:.1f}]",
        }
        for m in sorted(card.measurements.values(), key=lambda m: (m.kind == "summary", m.ref))
    ]
    checks = [
        {
            **asdict(c),
            "current_s": _fmt(c.current),
            "reference_s": _fmt(c.reference),
            "delta_s": "" if c.delta is None else f"{c.delta:+.2f}",
        }
        for c in sorted(card.checks, key=lambda c: (c.status != FAIL, c.kind, c.ref))
    ]
    html = env.get_template("card.html.jinja").render(
        card=card,
        verdict="PASS" if card.passed else "FAIL",
        rows=rows,
        checks=checks,
        n_fail=sum(c.status == FAIL for c in card.checks),
    )
    atomic_write(paths["html"], html)
    return paths
