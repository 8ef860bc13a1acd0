"""Images that already passed the full strict decode, so a later run need not decode them again.

A small sqlite file (default `~/.cache/mis-eval/validated-images.sqlite`, next to the judge
cache; `MIS_EVAL_IMAGE_CACHE=<file>` moves it, `=off` turns it off). A row says: the file at
this absolute path, with this size, mtime and sha256, decoded in full under these rules (Pillow
version, pixel limit). A file counts as validated only when all of them still match and the
hash of the bytes read now equals the stored one, so a changed, replaced or new file is decoded
again, and a lower pixel limit re-checks everything. Only successes are stored. The cache can
only skip work: when the file is unreadable or not a database, validation decodes everything.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

ENV = "MIS_EVAL_IMAGE_CACHE"
OFF = {"off", "0", "no", "false", "none"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS validated (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    rules TEXT NOT NULL,
    checked REAL NOT NULL
)
"""

Stamp = tuple[int, int, str]  # size, mtime_ns, sha256


def default_path() -> Path | None:
    """The cache file, or None when turned off."""
    env = os.environ.get(ENV, "").strip()
    if env.lower() in OFF:
        return None
    if env:
        return Path(env).expanduser()
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache_home / "mis-eval" / "validated-images.sqlite"


class ValidatedFiles:
    """The cache file; every failure to read or write it is a miss, never an error."""

    def __init__(self, path: Path, rules: str) -> None:
        self.path, self.rules = path, rules
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=10, isolation_level=None)
            db.execute("PRAGMA busy_timeout = 10000")
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")  # several loaders may share it
            db.execute(SCHEMA)
            self._db = db
        except (sqlite3.Error, OSError) as e:
            self._unusable(e)

    def _unusable(self, e: BaseException) -> None:
        print(
            f"warning: image validation cache {self.path} is unusable ({e}); decoding every image "
            f"(delete the file to rebuild it, or set {ENV}=off)",
            file=sys.stderr,
        )
        if self._db is not None:
            self._db.close()
        self._db = None

    def stamps(self, paths: Sequence[str]) -> dict[str, Stamp]:
        """Stored (size, mtime_ns, sha256) of the given absolute paths, under the current rules."""
        out: dict[str, Stamp] = {}
        if self._db is None:
            return out
        try:
            for i in range(0, len(paths), 500):
                chunk = list(paths[i : i + 500])
                rows = self._db.execute(
                    "SELECT path, size, mtime_ns, sha256 FROM validated WHERE rules = ? "
                    f"AND path IN ({','.join('?' * len(chunk))})",
                    [self.rules, *chunk],
                )
                for path, size, mtime_ns, sha in rows:
                    if isinstance(size, int) and isinstance(mtime_ns, int) and isinstance(sha, str):
                        out[path] = (size, mtime_ns, sha)  # a mangled row is a miss
        except sqlite3.Error as e:
            self._unusable(e)
            return {}
        return out

    def add(self, rows: Iterable[tuple[str, Stamp]]) -> None:
        """Remember files that just passed a full decode (one transaction)."""
        if self._db is None:
            return
        now = time.time()
        values = [(path, size, mtime, sha, self.rules, now) for path, (size, mtime, sha) in rows]
        if not values:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO validated VALUES (?, ?, ?, ?, ?, ?)", values)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            self._unusable(e)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
