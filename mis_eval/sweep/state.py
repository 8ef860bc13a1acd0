"""The sweep's own memory, `<output>/sweep_state.json`: per job its last outcome (done, failed and
why, log paths, time, where it ran and on which GPUs) and what it has already generated.

The run records stay the truth about what is done; this file adds what they cannot say (a
failure's reason and log, generation finished but not yet judged). Only the process running
the sweep writes it, always whole (temporary file + rename), under a lock file that keeps a
second sweep off the same output folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import IO, Any

from mis_eval.core.files import UnreadableFile, atomic_write, read_json
from mis_eval.core.record import utc_now

SCHEMA = "mis-eval.sweep/1"


class SweepState:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.jobs: dict[str, dict[str, Any]] = {}
        self.meta: dict[str, Any] = {}
        self._lock = threading.Lock()  # judging threads finish jobs concurrently (Ray mode)
        if path.is_file():
            try:
                data = read_json(path)
            except UnreadableFile as e:
                raise ValueError(
                    f"{path}: unreadable sweep state ({e}); delete it to start over (run records are kept)"
                ) from None
            if (
                not isinstance(data, dict)
                or data.get("schema") != SCHEMA
                or not isinstance(data.get("jobs"), dict)
            ):
                raise ValueError(f"{path}: not a {SCHEMA} sweep state; delete it to start over")
            self.jobs = data["jobs"]
            self.meta = {k: v for k, v in data.items() if k not in ("schema", "jobs")}

    def update(self, job_id: str, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into the job's entry and write the whole file (None removes a field)."""
        with self._lock:
            entry = self.jobs.setdefault(job_id, {})
            for k, v in fields.items():
                if v is None:
                    entry.pop(k, None)
                else:
                    entry[k] = v
            entry["updated_at"] = utc_now()
            self._write()
            return dict(entry)

    def set_meta(self, **fields: Any) -> None:
        with self._lock:
            self.meta.update(fields)
            self._write()

    def _write(self) -> None:
        data = {"schema": SCHEMA, **self.meta, "jobs": self.jobs}
        atomic_write(self.path, json.dumps(data, indent=2, ensure_ascii=False, default=str))


class SweepLock:
    """One sweep at a time per output folder (an advisory lock, released when the process ends)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def __enter__(self) -> SweepLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise ValueError(
                f"{self.path.parent}: another mis-eval sweep is running on this folder ({holder})"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
