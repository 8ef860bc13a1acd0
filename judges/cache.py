"""Persistent judge cache: sqlite in WAL mode, one committed row per finished judge reply.

Keyed on everything that changes the judge's answer (model id, endpoint, rubric hash, rendered
prompt, image content hashes, decoding settings) and nothing else (never the API key). Rows hold
the raw reply, not the parsed verdict, so a parser fix applies to cached replies. Only replies are
stored: a failed call is never cached and is asked again next run. Each row is committed as it
arrives (autocommit): a kill -9 loses at most the calls in flight. WAL plus a busy timeout lets
several processes share one file safely.

Work in flight is coordinated across processes with *leases*: before calling the judge for a key,
a run claims it (a row in `leases` with an owner and an expiry, in one transaction that also sees
whether a reply already exists). Another run skips a key leased by someone else and waits for its
reply; the owner renews its leases while it works and drops each one with its reply (or when the
call fails). A run killed with -9 renews nothing, so its leases lapse after their expiry and the
others take the keys over: nothing is lost and nothing waits longer than one expiry. (On the same
host a dead owner is recognised at once from its process id.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    raw TEXT NOT NULL,
    served_model TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    env = os.environ.get("MIS_EVAL_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mis-eval" / "judge.sqlite"


def cache_key(parts: Mapping[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def lease_owner() -> str:
    """`host:pid:random`: unique per run, and says where to look whether its process still lives."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def owner_alive(owner: str) -> int:
    """0 when the owner is a process of this host that no longer exists (its leases are void now,
    not only at expiry); 1 otherwise (other hosts: only the expiry can tell)."""
    try:
        host, pid, _ = owner.rsplit(":", 2)
        if host != socket.gethostname():
            return 1
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return 0
    except (ValueError, PermissionError, OverflowError):
        return 1
    return 1


@dataclass(frozen=True)
class CachedReply:
    raw: str
    served_model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _retry_locked(op: Callable[[], T], what: str) -> T:
    """Run a sqlite operation, retrying where another process holds a lock sqlite will not wait for
    (switching a fresh file to WAL, creating the table): the busy timeout covers the rest."""
    for attempt in range(40):
        try:
            return op()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            time.sleep(min(0.01 * 2**attempt, 0.5))
    raise RuntimeError(f"judge cache {what} stayed locked by another process")


class JudgeCache:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            self._db.create_function("owner_alive", 1, owner_alive)
            _retry_locked(self._setup, str(self.path))
        except sqlite3.DatabaseError as e:
            raise RuntimeError(
                f"judge cache {self.path} is unusable ({e}); delete it or pass cache=off"
            ) from e

    def _setup(self) -> None:
        self._db.execute("PRAGMA busy_timeout = 60000")
        if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")  # WAL+NORMAL: durable across process kills
        self._db.executescript(SCHEMA)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedReply]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, CachedReply] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = self._db.execute(
                "SELECT key, raw, served_model, prompt_tokens, completion_tokens FROM replies "
                f"WHERE key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for key, raw, model, pt, ct in rows:
                out[key] = CachedReply(raw, model, pt, ct)
        return out

    def put(self, key: str, judge: str, reply: CachedReply, *, owner: str | None = None) -> None:
        """Store a reply (and drop `owner`'s lease on the key in the same transaction)."""
        row = (key, judge, reply.raw, reply.served_model, reply.prompt_tokens, reply.completion_tokens)

        def op() -> None:
            with self._transaction():
                self._db.execute(
                    "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?)", (*row, time.time())
                )
                if owner is not None:
                    self._db.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner))

        _retry_locked(op, str(self.path))

    # -- leases: who is judging what, across processes -----------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT (rolled back on error): the write lock is taken up front."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def claim(
        self,
        keys: Iterable[str],
        owner: str,
        ttl: float,
        *,
        limit: int,
        stale: Mapping[str, str] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Lease up to `limit` of `keys` for `owner`; returns (claimed, finished).

        `finished` are keys that already have a reply (another run judged them; `stale` maps a key
        to a reply that does not count, for re-asking unparseable ones). A key leased by another
        owner whose lease has not expired is neither: the caller waits for it.
        """
        stale = stale or {}

        def op() -> tuple[list[str], list[str]]:
            claimed: list[str] = []
            finished: list[str] = []
            now = time.time()
            with self._transaction():
                for key in keys:
                    if len(claimed) >= limit:
                        break
                    row = self._db.execute("SELECT raw FROM replies WHERE key = ?", (key,)).fetchone()
                    if row is not None and (key not in stale or row[0] != stale[key]):
                        finished.append(key)
                        continue
                    cur = self._db.execute(
                        "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                        "owner = excluded.owner, expires = excluded.expires "
                        "WHERE leases.expires < ? OR leases.owner = excluded.owner "
                        "OR NOT owner_alive(leases.owner)",
                        (key, owner, now + ttl, now),
                    )
                    if cur.rowcount:
                        claimed.append(key)
            return claimed, finished

        return _retry_locked(op, str(self.path))

    def renew(self, owner: str, ttl: float) -> None:
        """Push back the expiry of every lease `owner` holds (its heartbeat)."""
        sql = "UPDATE leases SET expires = ? WHERE owner = ?"
        _retry_locked(lambda: self._db.execute(sql, (time.time() + ttl, owner)), str(self.path))

    def release(self, owner: str, keys: Iterable[str] | None = None) -> None:
        """Drop `owner`'s leases on `keys` (all of them when None): a failed call, or the run's end."""
        if keys is None:
            sql, rows = "DELETE FROM leases WHERE owner = ?", [(owner,)]
        else:
            sql, rows = "DELETE FROM leases WHERE key = ? AND owner = ?", [(k, owner) for k in keys]
        _retry_locked(lambda: self._db.executemany(sql, rows), str(self.path))

    def leases(self) -> list[tuple[str, str, float]]:
        """(key, owner, expires) of every lease row (for tests and diagnostics)."""
        return [tuple(r) for r in self._db.execute("SELECT key, owner, expires FROM leases")]  # type: ignore[misc]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        self._db.close()
