"""Files the app writes and reads: whole or not at all, and every failure names the file.

Every output (run records, per-sample files, leaderboard, viewer, attribution, self-test report,
calibration) is written by `atomic_write`: to a temporary name in the same folder, flushed to disk,
then renamed over the target. A reader never sees half a file, and a failed write (disk full,
file-size limit, read-only folder) leaves the old file as it was and no temporary file behind.
`write_new` is the same but never replaces a file that exists (a run record is one run: two runs
must never share a file). `read_json` turns every way a file can be unreadable (missing, a folder,
not UTF-8, malformed, nested too deeply for the parser) into one `UnreadableFile` naming it.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any

# errno -> what it means for a file we write, in words a user can act on
_WHY = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (the disk is full or a file-size limit was reached)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is not a folder",
}
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class OutputError(OSError):
    """A file could not be written; the message names it and says why (no space, read-only, ...)."""

    def __init__(self, path: Path, cause: OSError, what: str = "") -> None:
        super().__init__(f"cannot write {path}: {what}{why(cause)}")
        self.errno, self.filename = cause.errno, str(path)

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def no_space(self) -> bool:
        return self.errno in NO_SPACE


class UnreadableFile(ValueError):
    """A file could not be read as what it should be; the message names it and says why."""


def why(e: OSError) -> str:
    """An OSError's cause in words (its errno's meaning where known, else its own text)."""
    return _WHY.get(e.errno or 0) or e.strerror or str(e) or type(e).__name__


def _tmp_name(path: Path) -> Path:
    # A dot name in the same folder: readers skip dot files, and the rename stays on one file system.
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def _write_tmp(path: Path, data: str | bytes) -> Path:
    """`data` in a new temporary file next to `path`, on disk (fsync) before anything points at it."""
    blob = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(path, e, "cannot create its folder: ") from None
    tmp = _tmp_name(path)
    try:
        # os.open with 0o666, not mkstemp (0o600): the file gets the permissions the umask gives
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        _remove(tmp)
        if isinstance(e, OSError):
            raise OutputError(path, e) from None
        raise
    return tmp


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        pass  # nothing more can be done: the caller's own error says what went wrong


def atomic_write(path: Path | str, data: str | bytes) -> Path:
    """Write `data` (text is UTF-8) to `path` whole or not at all, replacing any old file."""
    path = Path(path)
    tmp = _write_tmp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException as e:
        _remove(tmp)
        if isinstance(e, OSError):
            raise OutputError(path, e) from None
        raise
    return path


def write_new(path: Path | str, data: str | bytes) -> Path:
    """Write `data` to `path` whole or not at all; FileExistsError (nothing written) if it exists.

    The finished temporary file is hard-linked to its name, which the OS refuses when the name is
    taken, so two writers racing for one name can never replace each other's file.
    """
    path = Path(path)
    tmp = _write_tmp(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise OutputError(path, e) from None
        # a file system without hard links: exclusive creation of the name, then the content over it
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            os.replace(tmp, path)
            return path
        except FileExistsError:
            raise
        except OSError as e2:
            raise OutputError(path, e2) from None
    finally:
        _remove(tmp)
    return path


def remove_quietly(path: Path | str) -> None:
    """Remove a file this process wrote, when what it belongs to could not be finished."""
    _remove(Path(path))


def _non_finite(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(text: str | bytes, where: str, *, finite: bool = False) -> Any:
    """JSON from text, or UnreadableFile naming `where` (a file, or a file and line).

    `finite`: refuse NaN / Infinity (which Python's json reads and strict readers reject) in files
    this app writes strictly, so a tampered one is unreadable here rather than at the next writer.
    """
    try:
        return json.loads(text, parse_constant=_non_finite) if finite else json.loads(text)
    except UnicodeDecodeError as e:
        raise UnreadableFile(f"{where}: not UTF-8 text ({e})") from None
    except ValueError as e:  # malformed, or an integer too long to convert (over 4300 digits)
        raise UnreadableFile(f"{where}: malformed JSON ({e})") from None
    except RecursionError:
        raise UnreadableFile(f"{where}: JSON nested too deeply to read") from None


def read_text(path: Path | str) -> str:
    """A text file's content, or UnreadableFile naming it (missing, a folder, not UTF-8, ...)."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UnreadableFile(f"{path}: not UTF-8 text ({e})") from None
    except OSError as e:
        raise UnreadableFile(f"{path}: cannot read ({why(e)})") from None


def read_json(path: Path | str) -> Any:
    """A JSON file's content, or UnreadableFile naming it."""
    return parse_json(read_text(path), str(path))
