"""A judge cache that cannot be used stops the command with one line that names the file and fits
the fault: corrupt (random bytes, damaged pages), read-only (the file or its folder), no space.

Exit status 2, no traceback, no judge call wasted; a cache that is intact is never called
unusable nor to be deleted, and still holds every reply afterwards. Read-only is made for real:
as root the command runs in a user namespace (`unshare -U`), where root's override of file
permissions does not apply. No space is a real failed write: RLIMIT_FSIZE with SIGXFSZ ignored.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from judges.cache import CachedReply, JudgeCache
from mis_eval.cli import main
from mis_eval.testing.fake_openai import FakeOpenAIServer, marker_reply
from tests.mis_data import MIS_METRICS, make_root, record, write_logs

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import resource, signal, sys
limit = int(sys.argv[1])
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from mis_eval.cli import main
sys.exit(main(sys.argv[2:]))
"""


def unprivileged() -> list[str]:
    """A prefix under which file permissions hold, even for root (a user namespace)."""
    if os.geteuid() != 0:
        return []
    probe = (
        subprocess.run(["unshare", "-U", "true"], capture_output=True) if shutil.which("unshare") else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("running as root without user namespaces: file permissions cannot be enforced")
    return ["unshare", "-U"]


def child(args: list[str], cwd: Path, *, limit: int = 0, prefix: list[str] = ()) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [*prefix, sys.executable, "-c", CHILD, str(limit), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stderr


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Path]:
    """A data root and lmms-eval logs of 6 MIS records (the fake judge's verdict in each question)."""
    recs = [record(i, question=f"Question {i} EXPECT={'Unsafe' if i % 2 else 'Safe'}/1") for i in range(1, 7)]
    root = make_root(tmp_path / "data", records=recs)
    logs = write_logs(tmp_path / "logs", [f"answer {i}" for i in range(1, 7)], metrics=MIS_METRICS)
    return root, logs


def judge_args(srv: FakeOpenAIServer, cache: Path, run: tuple[Path, Path], out: Path) -> list[str]:
    spec = f"local:base_url={srv.base_url},model=fake-gpt,cache={cache},backoff=0.01"
    root, logs = run
    return [
        "judge",
        str(logs),
        "--judge",
        spec,
        "--data-root",
        str(root),
        "--no-progress",
        "--results-dir",
        str(out),
    ]


def one_line(err: str, path: Path, kind: str) -> str:
    assert "Traceback" not in err, err
    (line,) = [x for x in err.splitlines() if "judge cache" in x]
    assert line.startswith(f"mis-eval judge: error: judge cache {path} {kind} ("), line
    return line


def half_judged(srv: FakeOpenAIServer, cache: Path, run: tuple[Path, Path], tmp_path: Path) -> bytes:
    """A cache holding the replies of the first 3 records only, closed (no journal files beside it,
    as after any finished run); returns its bytes."""
    root, logs = run
    first = write_logs(tmp_path / "first", [f"answer {i}" for i in range(1, 4)], metrics=MIS_METRICS)
    status, err = child(judge_args(srv, cache, (root, first), tmp_path / "r0"), tmp_path)
    assert status == 0, err
    assert sorted(p.name for p in cache.parent.glob(cache.name + "*")) == [cache.name]
    return cache.read_bytes()


def test_random_bytes_are_a_corrupt_cache(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "judge.sqlite"
    cache.write_bytes(os.urandom(16384))
    with FakeOpenAIServer(reply=marker_reply) as srv:
        assert main(judge_args(srv, cache, run, tmp_path / "results")) == 2
        assert srv.calls == 0
    line = one_line(capsys.readouterr().err, cache, "is corrupt")
    assert "file is not a database" in line and "move it aside" in line


def test_damaged_pages_are_a_corrupt_cache(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "judge.sqlite"
    store = JudgeCache(cache)
    for i in range(300):  # many pages
        store.put(f"k{i}", "j", CachedReply("reply " * 200))
    store.close()
    blob = bytearray(cache.read_bytes())
    blob[4096:] = os.urandom(len(blob) - 4096)  # the header page is fine, the tables are not
    cache.write_bytes(bytes(blob))
    with FakeOpenAIServer(reply=marker_reply) as srv:
        assert main(judge_args(srv, cache, run, tmp_path / "results")) == 2
        assert srv.calls == 0
    line = one_line(capsys.readouterr().err, cache, "is corrupt")
    assert "malformed" in line or "not a database" in line


def test_a_read_only_cache_file_is_intact_and_still_answers(run: tuple[Path, Path], tmp_path: Path) -> None:
    prefix = unprivileged()
    cache = tmp_path / "judge.sqlite"
    with FakeOpenAIServer(reply=marker_reply) as srv:
        before = half_judged(srv, cache, run, tmp_path)
        calls = srv.calls
        cache.chmod(0o444)
        status, err = child(judge_args(srv, cache, run, tmp_path / "results"), tmp_path, prefix=prefix)
        assert status == 2 and srv.calls == calls  # stopped before a call whose reply could not be kept
        line = one_line(err, cache, "is read-only")
        assert "the file is read-only" in line and "the cache itself is intact" in line
        assert "delete" not in err and "unusable" not in err
        assert hashlib.sha256(cache.read_bytes()).digest() == hashlib.sha256(before).digest()
        cached_run = (run[0], tmp_path / "first")  # what it holds is still read from it, with no call
        status, err = child(judge_args(srv, cache, cached_run, tmp_path / "r1"), tmp_path, prefix=prefix)
        assert status == 0 and srv.calls == calls, err
        cache.chmod(0o644)
        assert main(judge_args(srv, cache, run, tmp_path / "results")) == 0  # intact: 3 cached, 3 new
        assert srv.calls == calls + 3


def test_a_read_only_folder_is_named(run: tuple[Path, Path], tmp_path: Path) -> None:
    prefix = unprivileged()
    folder = tmp_path / "cache"
    folder.mkdir()
    cache = folder / "judge.sqlite"
    with FakeOpenAIServer(reply=marker_reply) as srv:
        half_judged(srv, cache, run, tmp_path)
        calls = srv.calls
        folder.chmod(0o555)
        try:
            status, err = child(judge_args(srv, cache, run, tmp_path / "results"), tmp_path, prefix=prefix)
        finally:
            folder.chmod(0o755)
        assert status == 2 and srv.calls == calls
        line = one_line(err, cache, "is read-only")
        assert "its folder is read-only" in line and "delete" not in err
        assert main(judge_args(srv, cache, run, tmp_path / "results")) == 0 and srv.calls == calls + 3
    fresh = tmp_path / "ro" / "new"
    (tmp_path / "ro").mkdir(mode=0o555)
    status, err = child(
        judge_args(srv, fresh / "judge.sqlite", run, tmp_path / "r2"), tmp_path, prefix=prefix
    )
    assert status == 2 and "is read-only" in one_line(err, fresh / "judge.sqlite", "is read-only")


def test_no_space_keeps_the_cache_and_says_so(run: tuple[Path, Path], tmp_path: Path) -> None:
    cache = tmp_path / "judge.sqlite"
    with FakeOpenAIServer(reply=marker_reply) as srv:
        half_judged(srv, cache, run, tmp_path)
        calls = srv.calls
        status, err = child(judge_args(srv, cache, run, tmp_path / "results"), tmp_path, limit=4096)
        assert status == 2 and srv.calls == calls, err
        line = one_line(err, cache, "has no space")
        assert "RLIMIT_FSIZE" in line and "keeps every reply stored so far" in line and "delete" not in err
        with sqlite3.connect(cache) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db.execute("SELECT COUNT(*) FROM replies").fetchone()[0] == 3
        fresh = tmp_path / "new" / "judge.sqlite"  # a cache that cannot even be created
        status, err = child(judge_args(srv, fresh, run, tmp_path / "r2"), tmp_path, limit=1000)
        assert status == 2 and "has no space" in one_line(err, fresh, "has no space")
