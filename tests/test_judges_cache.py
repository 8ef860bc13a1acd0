"""Judge cache: hits make no calls, keys follow the inputs, kill -9 loses nothing, writers coexist."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from judges.base import JudgeRequest, Parsed, Status, UnparseableReply
from judges.registry import get_judge
from judges.rubric import Rubric
from mis_eval.testing.fake_openai import FakeOpenAIServer, marker_reply, prompt_text
from mis_tasks.mis.parsing import parse_mis

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "Judge.\n<question>: {question}\n<Response>: {response}\nJSON."
RUBRIC = Rubric(name="mis", template=TEMPLATE, parse=parse_mis, system="You are a helpful assistant.")

# Judges items [start, stop) against base_url with cache file; prints nothing; exit code 0.
CHILD = """
import sys
from judges.base import JudgeRequest
from mis_tasks.mis.parsing import parse_mis
from judges.registry import get_judge
from judges.rubric import Rubric
base_url, cache, img, start, stop, conc = sys.argv[1:7]
rubric = Rubric(name="mis", template=TEMPLATE, parse=parse_mis, system="You are a helpful assistant.")
reqs = [
    JudgeRequest(key=f"k{i}", rubric=rubric, images=(img, img),
                 fields={"question": f"q{i}", "response": f"r{i} EXPECT={'Unsafe' if i % 2 else 'Safe'}/2"})
    for i in range(int(start), int(stop))
]
judge = get_judge("local", base_url=base_url, model="judge-x", cache=cache, concurrency=int(conc),
                  backoff=0.01)
verdicts = judge.judge(reqs, progress=False)
assert all(v.ok for v in verdicts), [v.error for v in verdicts if not v.ok]
""".replace("TEMPLATE", repr(TEMPLATE))


def reqs(img: str, start: int, stop: int, rubric: Rubric = RUBRIC) -> list[JudgeRequest]:
    return [
        JudgeRequest(
            key=f"k{i}",
            rubric=rubric,
            images=(img, img),
            fields={"question": f"q{i}", "response": f"r{i} EXPECT={'Unsafe' if i % 2 else 'Safe'}/2"},
        )
        for i in range(start, stop)
    ]


@pytest.fixture
def img(tmp_path: Path) -> str:
    p = tmp_path / "img.png"
    Image.new("RGB", (8, 8), (0, 128, 0)).save(p)
    return str(p)


def judge_for(srv: FakeOpenAIServer, cache: Path, **opts: object):
    return get_judge(
        "local",
        base_url=srv.base_url,
        model=opts.pop("model", "judge-x"),
        cache=str(cache),
        backoff=0.01,
        **opts,
    )


def question_of(body: dict) -> str:
    return prompt_text(body).split("<question>: ", 1)[1].split("\n", 1)[0]


def test_rejudging_makes_zero_calls(img, tmp_path):
    cache = tmp_path / "c.sqlite"
    with FakeOpenAIServer(reply=marker_reply) as srv:
        first = judge_for(srv, cache).judge(reqs(img, 0, 20), progress=False)
        calls = srv.calls
        again_judge = judge_for(srv, cache)
        again = again_judge.judge(reqs(img, 0, 20), progress=False)
    assert calls == 20 and srv.calls == 20  # no new call
    assert [(v.label, v.detail) for v in again] == [(v.label, v.detail) for v in first]
    assert all(v.cached and v.calls == 0 for v in again)
    acct = again_judge.accounting()
    assert acct["cache_hits"] == 20 and acct["calls"] == 0 and acct["prompt_tokens"] == 0


def test_key_follows_inputs_not_sample_keys(img, tmp_path):
    cache = tmp_path / "c.sqlite"
    with FakeOpenAIServer(reply=marker_reply) as srv:
        judge_for(srv, cache).judge(reqs(img, 0, 2), progress=False)
        renamed = [
            JudgeRequest(key="other/" + r.key, rubric=r.rubric, fields=r.fields, images=r.images)
            for r in reqs(img, 0, 2)
        ]
        judge_for(srv, cache).judge(renamed, progress=False)
        assert srv.calls == 2  # same content under another sample key: cached
        judge_for(srv, cache, model="judge-y").judge(reqs(img, 0, 2), progress=False)
        assert srv.calls == 4  # another judge model
        other = Rubric(name="mis", template=TEMPLATE + " ", parse=parse_mis, system=RUBRIC.system)
        judge_for(srv, cache).judge(reqs(img, 0, 2, other), progress=False)
        assert srv.calls == 6  # another prompt template
        Image.new("RGB", (8, 8), (1, 128, 0)).save(img)
        os.utime(img, ns=(1, 1))
        judge_for(srv, cache).judge(reqs(img, 0, 2), progress=False)
        assert srv.calls == 8  # same path, new image content


def test_duplicates_in_one_batch_are_judged_once(img, tmp_path):
    with FakeOpenAIServer(reply=marker_reply) as srv:
        verdicts = judge_for(srv, tmp_path / "c.sqlite").judge(reqs(img, 0, 3) * 3, progress=False)
    assert srv.calls == 3 and all(v.ok for v in verdicts) and sum(v.cached for v in verdicts) == 6


def test_cached_replies_are_reparsed_so_parser_fixes_apply(img, tmp_path):
    def strict(reply: str, untrusted: object = ()) -> Parsed:
        raise UnparseableReply("old parser")

    old = Rubric(name="mis", template=TEMPLATE, parse=strict, system=RUBRIC.system)
    cache = tmp_path / "c.sqlite"
    with FakeOpenAIServer(reply=marker_reply) as srv:
        (v,) = judge_for(srv, cache).judge(reqs(img, 0, 1, old), progress=False)
        assert v.status is Status.UNPARSEABLE
        (v,) = judge_for(srv, cache).judge(reqs(img, 0, 1), progress=False)
    assert v.ok and v.cached and v.label == "safe" and srv.calls == 1


def test_failures_are_not_cached(img, tmp_path):
    cache = tmp_path / "c.sqlite"
    with FakeOpenAIServer(reply=marker_reply, faults=lambda b, i: "500") as srv:
        (v,) = judge_for(srv, cache, max_retries=0).judge(reqs(img, 0, 1), progress=False)
    assert v.status is Status.ERROR
    with FakeOpenAIServer(reply=marker_reply) as srv:
        (v,) = judge_for(srv, cache).judge(reqs(img, 0, 1), progress=False)
    assert v.ok and not v.cached and srv.calls == 1


def cached_count(cache: Path) -> int:
    if not cache.exists():
        return 0
    with sqlite3.connect(cache, timeout=30) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])
        except sqlite3.OperationalError:  # table not created yet
            return 0


def child(base_url: str, cache: Path, img: str, start: int, stop: int, conc: int = 4) -> subprocess.Popen:
    args = [sys.executable, "-c", CHILD, base_url, str(cache), img, str(start), str(stop), str(conc)]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_9_loses_no_finished_verdict_and_judges_nothing_twice(img, tmp_path):
    cache, n = tmp_path / "c.sqlite", 40
    with FakeOpenAIServer(reply=marker_reply, latency=0.1) as srv:
        proc = child(srv.base_url, cache, img, 0, n)
        deadline = time.time() + 60
        while cached_count(cache) < 12 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        probe = judge_for(srv, cache)
        keys = {probe._prepare(r)[1]: r.fields["question"] for r in reqs(img, 0, n)}
        with sqlite3.connect(cache) as db:
            finished = {keys[k] for (k,) in db.execute("SELECT key FROM replies")}
        assert 12 <= len(finished) < n
        before = srv.calls

        proc = child(srv.base_url, cache, img, 0, n)
        assert proc.wait(60) == 0, proc.stderr.read().decode() if proc.stderr else ""
        asked_again = [question_of(b) for b in srv.requests[before:]]
        final = judge_for(srv, cache).judge(reqs(img, 0, n), progress=False)
    assert not finished & set(asked_again)  # nothing finished was judged again
    assert len(asked_again) == len(set(asked_again)) == n - len(finished)  # each missing one exactly once
    assert all(v.ok and v.cached for v in final) and srv.calls == before + n - len(finished)
    assert [v.label for v in final] == ["unsafe" if i % 2 else "safe" for i in range(n)]


def test_concurrent_writers_share_one_cache(img, tmp_path):
    cache = tmp_path / "c.sqlite"
    with FakeOpenAIServer(reply=marker_reply, latency=0.005) as srv:
        procs = [child(srv.base_url, cache, img, 0, 60, 8), child(srv.base_url, cache, img, 30, 90, 8)]
        for p in procs:
            assert p.wait(60) == 0, p.stderr.read().decode() if p.stderr else ""
        calls = srv.calls
        verdicts = judge_for(srv, cache).judge(reqs(img, 0, 90), progress=False)
    assert srv.calls == calls and all(v.ok and v.cached for v in verdicts)
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM replies").fetchone()[0] == 90


def test_unparseable_replies_are_cached_unless_asked_again(img, tmp_path):
    cache = tmp_path / "c.sqlite"
    with FakeOpenAIServer(reply=marker_reply, faults=["garbage"]) as srv:
        (v,) = judge_for(srv, cache).judge(reqs(img, 0, 1), progress=False)
        assert v.status is Status.UNPARSEABLE
        (v,) = judge_for(srv, cache).judge(reqs(img, 0, 1), progress=False)
        assert v.status is Status.UNPARSEABLE and v.cached and srv.calls == 1  # a finished run: no call
        (v,) = judge_for(srv, cache, retry_unparseable=True).judge(reqs(img, 0, 1), progress=False)
    assert v.ok and not v.cached and srv.calls == 2


WRITER = """
import sys
from judges.cache import CachedReply, JudgeCache
cache = JudgeCache(sys.argv[1])
for i in range(50):
    cache.put(f"{sys.argv[2]}-{i}", "j", CachedReply(f"reply {i}"))
    cache.get_many([f"0-{i}"])
"""


def test_processes_racing_to_create_the_cache_all_succeed(tmp_path):
    # probabilistic: the lock sqlite does not wait for (WAL switch on a fresh file) is rarely hit
    for rep in range(3):
        path = tmp_path / f"race{rep}.sqlite"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(path), str(k)], cwd=ROOT, stderr=subprocess.PIPE
            )
            for k in range(4)
        ]
        for p in procs:
            assert p.wait(60) == 0, p.stderr.read().decode() if p.stderr else ""
        assert cached_count(path) == 200
