"""Persistent judge cache: sqlite in WAL mode, one committed row per finished judge reply.

Keyed on everything that changes the judge's answer (model id, endpoint, rubric hash, rendered
prompt, image content hashes, decoding settings) and nothing else (never the API key). Rows hold
the raw reply, not the parsed verdict, so a parser fix applies to cached replies. Only replies are
stored: a failed call is never cached and is asked again next run. Each row is committed as it
arrives (autocommit): a kill -9 loses at most the calls in flight. WAL plus a busy timeout lets
several processes share one file safely.

A cache that cannot be used stops the command with a `CacheError` naming the file and what is
wrong, classified so the advice fits: *corrupt* (not a database, or damaged pages: move it aside),
*read-only* (the file or its folder: the cache is intact, make it writable or use another),
*no space* (the device is full: the cache is intact and keeps every reply stored so far).
Only a corrupt cache is ever called unusable; none is ever to be deleted.

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
import errno
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


class CacheError(OSError):
    """The judge cache cannot be used: which file, what is wrong, and what to do (never a traceback).

    An OSError: the command line reports it as one line, exit status 2.
    """

    def __init__(self, path: Path, kind: str, cause: str, advice: str) -> None:
        super().__init__(f"judge cache {path} {kind} ({cause}): {advice}")
        self.path, self.kind = path, kind

    def __str__(self) -> str:
        return str(self.args[0])


CORRUPT, READ_ONLY, NO_SPACE, UNREADABLE = "is corrupt", "is read-only", "has no space", "cannot be used"
_ELSEWHERE = "or pass the judge option cache=<another file> (or cache=off)"
_ADVICE = {
    CORRUPT: "its replies cannot be read; move it aside (it may be recoverable with `sqlite3 FILE .recover`) "
    "so a new cache starts, " + _ELSEWHERE,
    READ_ONLY: "the cache itself is intact; make the file and its folder writable, " + _ELSEWHERE,
    NO_SPACE: "the cache is intact and keeps every reply stored so far; free space on its device and "
    "re-run (only what is missing is judged), " + _ELSEWHERE,
    UNREADABLE: "check the file and its device, " + _ELSEWHERE,
}
# sqlite's primary result codes (the low byte of an extended code)
_SQLITE_KIND = {11: CORRUPT, 26: CORRUPT, 8: READ_ONLY, 13: NO_SPACE}


def _existing(path: Path) -> Path:
    """`path`, or its nearest folder that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(path: Path) -> bool:
    """Whether this process may write `path`, or create it (where it does not exist yet)."""
    return os.access(_existing(path), os.W_OK)


def _space(path: Path) -> str | None:
    """Why writes to `path` may fail for want of space, or None: a full device, or a file-size limit."""
    import resource
    import shutil

    try:
        free = shutil.disk_usage(_existing(path.parent)).free
        if free < 1 << 20:
            return f"{free} bytes free on its device"
    except OSError:
        pass
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        return f"this process may not write files beyond {limit} bytes (RLIMIT_FSIZE)"
    return None


def classify(path: Path, e: BaseException) -> CacheError:
    """The CacheError a failure of the cache file at `path` means (corrupt / read-only / no space)."""
    if isinstance(e, CacheError):
        return e
    cause = str(e) or type(e).__name__
    kind = UNREADABLE
    if isinstance(e, sqlite3.Error):
        kind = _SQLITE_KIND.get((getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF, UNREADABLE)
    elif isinstance(e, OSError):
        cause = (e.strerror or cause) + (f": {e.filename}" if e.filename else "")
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            kind = READ_ONLY
        elif e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            kind = NO_SPACE
    if kind in (UNREADABLE, READ_ONLY):  # which: the file, or its folder (sqlite writes its journal there)
        if path.exists() and not os.access(path, os.W_OK):
            kind, cause = READ_ONLY, cause + "; the file is read-only"
        elif not _writable(path.parent):
            kind, cause = READ_ONLY, cause + "; its folder is read-only (sqlite writes its journal there)"
    if kind in (UNREADABLE, NO_SPACE) and (space := _space(path)):
        kind, cause = NO_SPACE, f"{cause}; {space}"
    return CacheError(path, kind, cause, _ADVICE[kind].replace("FILE", str(path)))


def _retry_locked(op: Callable[[], T], path: Path) -> T:
    """Run a sqlite operation, retrying where another process holds a lock sqlite will not wait for
    (switching a fresh file to WAL, creating the table): the busy timeout covers the rest. Any other
    failure is a CacheError naming the file and what is wrong with it."""
    for attempt in range(40):
        try:
            return op()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise classify(path, e) from None
            time.sleep(min(0.01 * 2**attempt, 0.5))
        except sqlite3.Error as e:
            raise classify(path, e) from None
    raise CacheError(path, "stayed locked", "another process holds it", "wait for it, " + _ELSEWHERE)


class JudgeCache:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise classify(self.path, e) from None
        self._db.create_function("owner_alive", 1, owner_alive)
        try:
            _retry_locked(self._setup, self.path)
        except CacheError:
            self._db.close()
            raise

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
            sql = (
                "SELECT key, raw, served_model, prompt_tokens, completion_tokens FROM replies "
                f"WHERE key IN ({','.join('?' * len(chunk))})"
            )
            rows = _retry_locked(lambda: self._db.execute(sql, chunk).fetchall(), self.path)  # noqa: B023
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

        _retry_locked(op, self.path)

    # -- leases: who is judging what, across processes -----------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT (rolled back on error): the write lock is taken up front."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # a failed COMMIT (disk full) may leave it open
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

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

        return _retry_locked(op, self.path)

    def renew(self, owner: str, ttl: float) -> None:
        """Push back the expiry of every lease `owner` holds (its heartbeat).

        Best effort: a cache that cannot be written fails the next claim or reply with the reason;
        a lease not renewed only lets another run take the key over."""
        sql = "UPDATE leases SET expires = ? WHERE owner = ?"
        with contextlib.suppress(CacheError):
            _retry_locked(lambda: self._db.execute(sql, (time.time() + ttl, owner)), self.path)

    def release(self, owner: str, keys: Iterable[str] | None = None) -> None:
        """Drop `owner`'s leases on `keys` (all of them when None): a failed call, or the run's end.

        Best effort, like `renew`: a lease left behind lapses at its expiry (at once on this host, its
        owner's process being gone), and the failure that stopped the run is the one reported."""
        rows: list[tuple[str, ...]]
        if keys is None:
            sql, rows = "DELETE FROM leases WHERE owner = ?", [(owner,)]
        else:
            sql, rows = "DELETE FROM leases WHERE key = ? AND owner = ?", [(k, owner) for k in keys]
        with contextlib.suppress(CacheError):
            _retry_locked(lambda: self._db.executemany(sql, rows), self.path)

    def count(self) -> int:
        sql = "SELECT COUNT(*) FROM replies"
        return int(_retry_locked(lambda: self._db.execute(sql).fetchone()[0], self.path))

    def close(self) -> None:
        self._db.close()
