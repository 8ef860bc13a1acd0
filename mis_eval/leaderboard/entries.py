"""One leaderboard input = one model x task result, whatever file it came from.

`Key` is what makes two numbers comparable: the same judge (id, model, prompt hashes,
decoding settings) and the same data (benchmark version, fingerprint, size). Cells are
only ever placed in one column, and summaries only ever averaged, within one key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mis_eval.core.record import Metric

_LMMS_STAMP = re.compile(r"^\d{8}_\d{6}")


def signature(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Key:
    """A judge or data version: `sig` decides equality, `label` is what readers see."""

    sig: str
    label: str
    detail: str = ""  # longer description for legends and tooltips
    family: str = ""  # data keys: benchmark + version, shared by the splits of one release
    paper: bool = False  # judge keys: the paper's judge in paper mode (reported rows may share its column)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and self.sig == other.sig

    def __hash__(self) -> int:
        return hash(self.sig)


@dataclass
class Entry:
    model: str
    task: str
    metrics: dict[str, Metric]
    judge: Key
    data: Key
    origin: str  # mis-eval | lmms-eval | reported
    finished_at: datetime
    source: str  # file the numbers were read from (relative to the results folder when possible)
    run_id: str = ""
    notes: list[str] = field(default_factory=list)
    limited: str = ""  # why this is not a full run (lmms-eval --limit); such runs are never ranked
    incomplete: str = ""  # why the record's numbers cannot stand (too many unusable verdicts); never ranked

    @property
    def when(self) -> str:
        return self.finished_at.isoformat(timespec="seconds")


def parse_time(text: str | None, local_tz: str = "Asia/Singapore") -> datetime:
    """ISO-8601 (run records) or lmms-eval's `%Y%m%d_%H%M%S` (local time of its --timezone) -> aware UTC."""
    if not text:
        return datetime.min.replace(tzinfo=UTC)
    text = str(text)
    if _LMMS_STAMP.match(text):  # checked first: fromisoformat would read it as naive UTC
        from zoneinfo import ZoneInfo

        try:
            dt = datetime.strptime(text[:15], "%Y%m%d_%H%M%S").replace(tzinfo=ZoneInfo(local_tz))
        except (ValueError, KeyError):  # KeyError: ZoneInfoNotFoundError for an unknown zone
            dt = datetime.strptime(text[:15], "%Y%m%d_%H%M%S")
    else:
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return datetime.min.replace(tzinfo=UTC)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)
