"""A full disk loses nothing already done and leaves no half-written file.

The disk fills for real, without root: the command runs in a child process under RLIMIT_FSIZE
(with SIGXFSZ ignored, so a write past the limit fails with EFBIG exactly where a full disk
fails with ENOSPC). Every output goes through one writer (mis_eval.core.files.atomic_write /
write_new): a failed write names its file, leaves the old file as it was and no temporary file,
and paid judge replies are already committed to the judge cache.
"""

from __future__ import annotations

import ast
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from mis_eval.cli import main
from mis_eval.testing.fake_openai import FakeOpenAIServer, marker_reply
from tests.mis_data import MIS_METRICS, make_root, record, write_logs
from tests.test_attribution import write_variant_runs

ROOT = Path(__file__).resolve().parents[1]
LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from mis_eval.cli import main
sys.exit(main(sys.argv[2:]))
"""


def limited(args: list[str], cwd: Path, max_file_bytes: int) -> subprocess.CompletedProcess[str]:
    """`mis-eval ARGS` in a process that cannot write any file beyond `max_file_bytes`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-c", LIMITED, str(max_file_bytes), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob(".*") if p.is_file()]


def test_disk_full_while_writing_the_record_keeps_every_paid_reply(tmp_path: Path) -> None:
    plan = ["Safe/1", "Unsafe/2", "Safe/3", "Unsafe/1"]
    recs = [record(i, question=f"Question {i} EXPECT={p}") for i, p in enumerate(plan, start=1)]
    root = make_root(tmp_path / "data", records=recs)
    long = [f"answer {i} " + "x" * 400_000 for i in range(1, 5)]  # the samples file: ~1.6 MB
    logs = write_logs(tmp_path / "logs", long, metrics=MIS_METRICS)
    cache, results = tmp_path / "cache.sqlite", tmp_path / "results"
    with FakeOpenAIServer(reply=marker_reply) as srv:
        spec = f"local:base_url={srv.base_url},model=fake-gpt,cache={cache},backoff=0.01"
        args = ["judge", str(logs), "--judge", spec, "--data-root", str(root), "--no-progress"]
        args += ["--results-dir", str(results)]
        proc = limited(args, tmp_path, 1_000_000)  # the cache fits, the samples file does not
        assert srv.calls == 4
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        assert ".samples.jsonl: file too large (the disk is full or a file-size limit" in proc.stderr
        assert leftovers(results) == [] and list(results.rglob("*.samples.jsonl")) == []  # nothing half-done
        with sqlite3.connect(cache) as db:
            assert db.execute("SELECT COUNT(*) FROM replies").fetchone()[0] == 4  # paid replies kept
        assert main(args) == 0  # space again: the record from the cache, no call
        assert srv.calls == 4
    ((written),) = list(results.rglob("*.json"))
    rec = json.loads(written.read_text())
    assert rec["counts"]["cached"] == 4 and rec["metrics"]["ASR"]["value"] == 50.0


def whole(name: str, blob: bytes) -> bool:
    """Whether an output file is complete (not cut off by a failed write)."""
    if name.endswith(".png"):
        from io import BytesIO

        from PIL import Image

        with Image.open(BytesIO(blob)) as im:
            im.load()  # a truncated PNG raises
        return True
    if name.endswith(".html"):
        return blob.rstrip().endswith(b"</html>")
    return blob.endswith(b"\n")


def test_leaderboard_outputs_survive_a_full_disk_whole(tmp_path: Path) -> None:
    root = make_root(tmp_path / "data", "hard", n=3)
    write_variant_runs(root, tmp_path / "results", {"both": "UUS", "first": "USS"})
    assert main(["leaderboard", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "lb")]) == 0
    before = snapshot(tmp_path / "lb")
    assert len(before["index.html"]) > 20_000  # the page embeds its plots
    proc = limited(["leaderboard", "--results", "results", "--out", "lb"], tmp_path, 20_000)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"cannot write {Path('lb')}/" in proc.stderr and "file too large" in proc.stderr
    after = snapshot(tmp_path / "lb")
    assert set(after) == set(before) and leftovers(tmp_path / "lb") == []
    assert after["index.html"] == before["index.html"]  # the page is the last one written whole
    assert all(whole(name, blob) for name, blob in after.items())  # each file old or new, never cut


def test_viewer_page_survives_a_full_disk_whole(tmp_path: Path) -> None:
    root = make_root(tmp_path / "data", "hard", n=3)
    write_variant_runs(root, tmp_path / "results", {"both": "UUS"})
    assert main(["view", str(tmp_path / "results"), "--out", str(tmp_path / "vw"), "--no-progress"]) == 0
    page = (tmp_path / "vw" / "index.html").read_bytes()
    proc = limited(["view", "results", "--out", "vw", "--no-progress", "--title", "new"], tmp_path, 10_000)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"cannot write {Path('vw') / 'index.html'}: file too large" in proc.stderr
    assert (tmp_path / "vw" / "index.html").read_bytes() == page and leftovers(tmp_path / "vw") == []


def test_a_read_only_output_folder_names_the_file_and_keeps_it(tmp_path: Path) -> None:
    from tests.test_judges_cache_faults import unprivileged

    prefix = unprivileged()  # as root: a user namespace, where folder permissions hold
    root = make_root(tmp_path / "data", "hard", n=3)
    write_variant_runs(root, tmp_path / "results", {"both": "UUS"})
    assert main(["leaderboard", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "lb")]) == 0
    before = snapshot(tmp_path / "lb")
    (tmp_path / "lb").chmod(0o555)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
        cmd = [
            *prefix,
            sys.executable,
            "-m",
            "mis_eval.cli",
            "leaderboard",
            "--results",
            "results",
            "--out",
            "lb",
        ]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    finally:
        (tmp_path / "lb").chmod(0o755)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"cannot write {Path('lb')}/" in proc.stderr and ": permission denied" in proc.stderr
    assert snapshot(tmp_path / "lb") == before


WRITERS = {"write_text", "write_bytes", "to_csv", "savefig", "save", "copyfile", "copy2", "copytree", "dump"}


def test_every_output_goes_through_the_atomic_writer() -> None:
    """No product module writes a file but through mis_eval.core.files (test doubles excepted)."""
    offenders = []
    for path in sorted((ROOT / "mis_eval").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "testing" or rel == Path("mis_eval/core/files.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            buffered = any(isinstance(a, ast.Name) and a.id == "buf" for a in node.args)
            to_string = name == "to_csv" and not node.args  # to_csv() returns the text
            mode = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
            opened = name == "open" and any(isinstance(m, str) and set(m) & set("wax") for m in mode)
            if (name in WRITERS and not buffered and not to_string) or opened:
                offenders.append(f"{rel}:{node.lineno} {name}")
    assert offenders == []
