"""Several `judge` processes on one cache share the work: leases on in-flight keys, with expiry.

Real processes against the real local fake server (mis_eval/testing/fake_openai.py).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from judges.cache import JudgeCache, owner_alive
from mis_eval.testing.fake_openai import FakeOpenAIServer, marker_reply
from tests.test_judges_cache import cached_count, child, img, judge_for, question_of, reqs

__all__ = ["img"]  # the fixture, re-used


def lease_rows(cache: Path) -> int:
    with sqlite3.connect(cache, timeout=30) as db:
        return int(db.execute("SELECT COUNT(*) FROM leases").fetchone()[0])


def test_concurrent_runs_make_each_call_about_once(img, tmp_path):
    cache, n = tmp_path / "c.sqlite", 120
    with FakeOpenAIServer(reply=marker_reply, latency=0.03) as srv:
        JudgeCache(cache).close()  # created up front so all three start racing on the work
        procs = [child(srv.base_url, cache, img, 0, n, 8) for _ in range(3)]
        for p in procs:
            assert p.wait(120) == 0, p.stderr.read().decode() if p.stderr else ""
        calls = srv.calls
        asked = [question_of(b) for b in srv.requests]
        verdicts = judge_for(srv, cache).judge(reqs(img, 0, n), progress=False)
    assert calls <= 1.05 * n, (calls, len(set(asked)))
    assert len(set(asked)) == n and all(v.ok and v.cached for v in verdicts)
    assert lease_rows(cache) == 0  # every run dropped its leases


def test_kill_9_of_one_concurrent_run_loses_nothing_and_blocks_nobody(img, tmp_path):
    cache, n = tmp_path / "c.sqlite", 80
    with FakeOpenAIServer(reply=marker_reply, latency=0.1) as srv:
        JudgeCache(cache).close()
        victim, survivor = child(srv.base_url, cache, img, 0, n, 4), child(srv.base_url, cache, img, 0, n, 4)
        deadline = time.time() + 60
        while cached_count(cache) < 10 and time.time() < deadline:
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        started = time.time()
        assert survivor.wait(60) == 0, survivor.stderr.read().decode() if survivor.stderr else ""
        waited = time.time() - started
        calls = srv.calls
    assert cached_count(cache) == n  # the survivor finished the victim's leased keys too
    assert waited < 30  # the dead run's leases (60 s expiry) did not hold it up: its pid is gone
    assert calls <= n + 4, calls  # at most the victim's in-flight calls were lost and repeated
    assert lease_rows(cache) == 0


def test_a_lease_of_a_run_elsewhere_blocks_no_longer_than_its_expiry(img, tmp_path):
    cache, n, expiry = tmp_path / "c.sqlite", 6, 2.0
    with FakeOpenAIServer(reply=marker_reply) as srv:
        judge = judge_for(srv, cache)
        keys = [judge._prepare(r)[1] for r in reqs(img, 0, n)]
        db = JudgeCache(cache)
        # another host's run holds the first three keys; its process cannot be checked from here
        other = "some-other-host:4242:abc"
        claimed, _ = db.claim(keys[:3], other, expiry, limit=3)
        assert claimed == keys[:3] and owner_alive(other) == 1
        started = time.time()
        verdicts = judge.judge(reqs(img, 0, n), progress=False)
        waited = time.time() - started
        calls = srv.calls
        db.close()
    assert all(v.ok for v in verdicts) and calls == n  # taken over after the expiry, judged once
    assert expiry - 0.2 <= waited < expiry + 5, waited
    assert lease_rows(cache) == 0


def test_a_failed_call_releases_its_lease_at_once(img, tmp_path):
    cache = tmp_path / "c.sqlite"
    with FakeOpenAIServer(reply=marker_reply, faults=["500"] * 5) as srv:
        (v,) = judge_for(srv, cache, max_retries=4).judge(reqs(img, 0, 1), progress=False)
        assert not v.ok and lease_rows(cache) == 0
        started = time.time()
        (v,) = judge_for(srv, cache).judge(reqs(img, 0, 1), progress=False)
    assert v.ok and time.time() - started < 5


@pytest.mark.parametrize("cache", ["on", "off"])
def test_stalled_calls_do_not_hold_back_the_others(img, tmp_path, cache):
    """The server holds two calls until every other item has been answered (or 20 s pass: the
    fallback that ends the test when the judge waits for them before sending more). With 4
    connections, the other items must all go through on the two left. Counted by the server, not
    timed: a judge that waits for a whole batch (two batches in flight, each with one stalled
    call) sends nothing more until the fallback."""
    n, stalled = 60, {"q5", "q13"}

    def stall(body: dict, index: int) -> str | None:
        return "stall" if question_of(body) in stalled else None

    with FakeOpenAIServer(reply=marker_reply, faults=stall, stall_for=n - len(stalled), hang=20) as srv:
        path = tmp_path / "c.sqlite" if cache == "on" else Path("off")
        verdicts = judge_for(srv, path, concurrency=4).judge(reqs(img, 0, n), progress=False)
        stalls = srv.stalls
    assert all(v.ok for v in verdicts)
    assert len(stalls) == 2 and min(stalls) >= n - 2, (
        f"answers sent when the stalled calls got theirs: {stalls}"
    )
