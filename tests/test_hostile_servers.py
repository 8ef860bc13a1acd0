"""Judge and API-model clients against a hostile or broken server (issue 21, items 2, 3, 6, 12, 13).

Every case runs against the real fake OpenAI server (mis_eval/testing/fake_openai.py) over
127.0.0.1: a reply dripped out byte by byte, replies of any size (chunked, announced, gzip bombs),
redirects, a key echoed in a 200 reply, NaN where numbers or text belong.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from judges.base import JudgeRequest, Status, Verdict
from judges.registry import get_judge
from judges.rubric import Rubric
from mis_eval.cli import main
from mis_eval.core.samples import split_response
from mis_eval.records import find_runs, write_run
from mis_eval.redaction import Redactor, secret_values
from mis_eval.testing.fake_openai import FakeOpenAIServer, marker_reply
from mis_eval.testing.synthetic_runs import mis_record
from mis_tasks.mis.parsing import parse_mis
from model_adapters.openai_api import MisOpenAI
from tests.adapters_support import image, instances
from tests.mis_data import MIS_METRICS, make_root, record, write_logs

RUBRIC = Rubric(name="mis", template="Judge.\n{question}\n{response}\nJSON.", parse=parse_mis)
KEY = "sk-hostile-KEY-0123456789abcdef"
MIB = 1024**2


# -- helpers ---------------------------------------------------------------------------------------
def reqs(tmp_path: Path, n: int = 1) -> list[JudgeRequest]:
    img = tmp_path / "i.png"
    Image.new("RGB", (8, 8), (9, 9, 9)).save(img)
    fields = {"question": "q EXPECT=Safe/1", "response": "r"}
    return [JudgeRequest(key=f"k{i}", rubric=RUBRIC, images=(str(img),), fields=fields) for i in range(n)]


def judge_once(srv: FakeOpenAIServer, tmp_path: Path, n: int = 1, **opts: Any) -> tuple[list[Verdict], Any]:
    options: dict[str, Any] = {"model": "m", "cache": str(tmp_path / "judge.sqlite"), "max_retries": 0}
    judge = get_judge("local", base_url=srv.base_url, **(options | opts))
    return judge.judge(reqs(tmp_path, n), progress=False), judge


def cached_rows(tmp_path: Path) -> list[tuple[Any, ...]]:
    """Every stored reply (read through sqlite: the WAL file is part of the cache)."""
    path = tmp_path / "judge.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return db.execute("SELECT raw, prompt_tokens, completion_tokens FROM replies").fetchall()


def generate(srv: FakeOpenAIServer, n: int = 1, **args: Any) -> list[str]:
    """mis_openai's answers (or failure markers) for n requests."""
    model = MisOpenAI(model="fake-gpt", base_url=srv.base_url, **{"backoff": 0.01, "max_retries": 0, **args})
    docs = [{"question": f"question {i}", "images": [image(8, 8, (255, 0, 0))]} for i in range(n)]
    items, task_dict = instances(docs)
    model.task_dict = task_dict
    return model.generate_until(items)


def strict_json(text: str) -> Any:
    """json.loads as a strict reader: NaN and Infinity are not JSON."""

    def refuse(name: str) -> Any:
        raise ValueError(f"non-JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def mis_eval(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`mis-eval ARGS` in this process: (exit status, stdout + stderr)."""
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


# -- item 2: `timeout` is a deadline for the whole call ---------------------------------------------
def test_a_judge_reply_dripped_out_byte_by_byte_ends_at_the_timeout(tmp_path: Path) -> None:
    # 4 bytes/s: each read gets a byte well within the 1 s timeout, the body would take about a minute
    with FakeOpenAIServer(reply=marker_reply, faults=["drip"], drip=0.25) as srv:
        start = time.monotonic()
        (v,), _ = judge_once(srv, tmp_path, timeout=1)
        elapsed = time.monotonic() - start
    assert v.status is Status.ERROR and "timed out after 1 s" in (v.error or ""), v
    assert elapsed < 10


def test_an_api_model_answer_dripped_out_ends_at_the_timeout() -> None:
    with FakeOpenAIServer(reply="a fine answer", faults=["drip"], drip=0.25) as srv:
        start = time.monotonic()
        (out,) = generate(srv, timeout=1)
        elapsed = time.monotonic() - start
    response, error = split_response(out)
    assert response is None and "timed out after 1 s" in (error or ""), out
    assert elapsed < 10


# -- item 3: replies are read up to a cap -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["huge", "huge_declared", "gzip_bomb"])
def test_an_oversized_judge_reply_is_an_error_read_no_further_than_the_cap(tmp_path: Path, kind: str) -> None:
    with FakeOpenAIServer(reply=marker_reply, faults=[None, kind], huge=64 * MIB) as srv:
        judge_once(srv, tmp_path, cache="off")  # imports and first-call set-up, untraced
        tracemalloc.start()
        try:
            (v,), judge = judge_once(srv, tmp_path)  # the default cap, 1 MiB
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        sent = srv.bytes_sent
    assert v.status is Status.ERROR and "over the cap of 1048576 bytes (option max_reply_bytes)" in (
        v.error or ""
    )
    assert v.raw == "" and cached_rows(tmp_path) == []  # nothing of it stored
    assert peak < 8 * MIB, f"peak {peak / MIB:.0f} MiB while refusing a 64 MiB reply"
    assert sent < 32 * MIB  # the client hung up instead of reading it all
    assert judge.settings()["max_reply_bytes"] == MIB


def test_the_reply_cap_is_an_option_and_a_reply_under_it_is_read(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=marker_reply, faults=["huge", "huge"], huge=256 * 1024) as srv:
        (small,), _ = judge_once(srv, tmp_path / "a", max_reply_bytes=MIB)
        (capped,), _ = judge_once(srv, tmp_path / "b", max_reply_bytes=64 * 1024)
    assert small.status is Status.UNPARSEABLE and len(small.raw) > 200_000  # read in full, then judged
    assert capped.status is Status.ERROR and "cap of 65536 bytes" in (capped.error or "")


def test_an_oversized_api_model_answer_is_a_failed_generation(tmp_path: Path) -> None:
    cache = tmp_path / "answers.jsonl"
    with FakeOpenAIServer(reply="fine", faults=["huge"], huge=48 * MIB) as srv:
        (out,) = generate(srv, cache=str(cache))  # the default cap, 16 MiB
        sent = srv.bytes_sent
    response, error = split_response(out)
    assert response is None and "over the cap of 16777216 bytes (option max_reply_bytes)" in (error or "")
    assert sent < 32 * MIB and (not cache.exists() or cache.stat().st_size == 0)
    with FakeOpenAIServer(reply="fine", faults=["huge", "huge", "gzip_bomb"], huge=256 * 1024) as srv:
        capped, read = generate(srv, max_reply_bytes=64 * 1024)[0], generate(srv)[0]
        bomb = generate(srv, max_reply_bytes=64 * 1024)[0]  # 256 KiB of JSON in about 1 KiB of gzip
    assert "over the cap of 65536 bytes" in (split_response(capped)[1] or "")
    assert "over the cap of 65536 bytes" in (split_response(bomb)[1] or "")
    assert len(read) > 200_000  # under the default cap: an answer


# -- item 6: no redirect is followed ----------------------------------------------------------------
def test_a_judge_never_follows_a_302(tmp_path: Path) -> None:
    # a careless server answers the GET a followed 302 turns the POST into
    with FakeOpenAIServer(reply=marker_reply, faults=lambda body, i: "302") as srv:
        verdicts, judge = judge_once(srv, tmp_path, n=3, concurrency=1)
        gets, calls = srv.gets, srv.calls
    assert gets == [] and calls == 1  # not followed; the endpoint redirects, so the rest are not sent
    first = verdicts[0].error or ""
    assert f"HTTP 302: redirect to http://127.0.0.1:{srv.port}/v1/chat/completions refused" in first
    assert "query-secret" not in first  # the Location's query is not repeated
    assert all(v.status is Status.ERROR for v in verdicts) and cached_rows(tmp_path) == []


def test_a_307_cannot_send_the_prompts_or_the_key_to_another_port(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=marker_reply) as elsewhere:
        target = f"http://user:pw-in-location-77@127.0.0.1:{elsewhere.port}/v1/chat/completions?sig=abcdef"
        with FakeOpenAIServer(reply=marker_reply, faults=["307"], redirect_to=target) as srv:
            (v,), _ = judge_once(srv, tmp_path)
        with FakeOpenAIServer(reply="fine", faults=["307"], redirect_to=target) as srv:
            (out,) = generate(srv, api_key=KEY)
        assert elsewhere.calls == 0 and elsewhere.gets == []
    assert v.status is Status.ERROR
    for error in (v.error or "", split_response(out)[1] or ""):
        assert f"HTTP 307: redirect to http://127.0.0.1:{elsewhere.port}/v1/chat/completions refused" in error
        assert "pw-in-location" not in error and "sig=" not in error


def test_an_api_model_never_follows_a_302() -> None:
    with FakeOpenAIServer(reply="the answer to a GET", faults=["302"]) as srv:
        (out,) = generate(srv)
        gets = srv.gets
    response, error = split_response(out)
    assert gets == [] and response is None and "HTTP 302: redirect to" in (error or "")


# -- item 12: the run's secrets are masked in everything written ------------------------------------
def test_a_key_echoed_in_a_judge_reply_is_masked_in_verdict_and_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_JUDGE_API_KEY", KEY)
    with FakeOpenAIServer(reply=marker_reply, faults=["echo"]) as srv:
        (v,), _ = judge_once(srv, tmp_path)
        assert KEY in srv.auth[0]  # the key was sent, and quoted back in the reply
    assert v.status is Status.OK and v.label == "safe"
    assert "request came with Bearer ***" in v.raw and KEY not in v.raw
    ((raw, _, _),) = cached_rows(tmp_path)
    assert KEY not in raw and "Bearer ***" in raw


def test_credentials_in_a_judge_base_url_never_reach_an_error(tmp_path: Path) -> None:
    for url in ("user:url-pass-9876@127.0.0.1:1/v1", "http://user:url-pass-9876@127.0.0.1:1/v1"):
        judge = get_judge("local", base_url=url, model="m", cache="off", max_retries=0)
        (v,) = judge.judge(reqs(tmp_path), progress=False)
        assert v.status is Status.ERROR and "url-pass-9876" not in (v.error or ""), v.error
        assert "url-pass-9876" not in json.dumps(judge.info([RUBRIC]).settings)


def test_a_key_echoed_in_an_api_model_answer_is_masked_in_answer_and_cache(tmp_path: Path) -> None:
    cache = tmp_path / "answers.jsonl"
    with FakeOpenAIServer(reply="my answer", faults=["echo"]) as srv:
        (out,) = generate(srv, api_key=KEY, cache=str(cache))
    assert out == "my answer (request came with Bearer ***)"
    assert KEY not in cache.read_text(encoding="utf-8")


def test_secrets_from_any_source_never_reach_records_samples_or_viewer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key echoed into the judged responses and the judge's replies, and credentials in the
    model args lmms-eval recorded: none of it reaches a file mis-eval writes."""
    recs = [record(i, question=f"Question {i} EXPECT=Safe/1") for i in (1, 2)]
    root = make_root(tmp_path / "data", records=recs)
    logs = write_logs(tmp_path / "logs", [f"answer quoting {KEY}", "plain"], metrics=MIS_METRICS)
    model_args = (
        "model=m,api_key=short,max_new_tokens=1024,max_tokens_param=max_completion_tokens,"
        "base_url=http://u:basic-pass-5555@h/v1?token=tok-in-url-42"
    )
    (logs / "20260101_000000_results.json").write_text(
        json.dumps({"model_name": "m", "config": {"model": "mis_openai", "model_args": model_args}})
    )
    monkeypatch.setenv("LOCAL_JUDGE_API_KEY", KEY)
    results = tmp_path / "results"
    with FakeOpenAIServer(reply=marker_reply, faults=lambda body, i: "echo") as srv:
        judge = f"local:base_url={srv.base_url},model=fake-gpt"
        args = ["judge", str(logs), "--judge", judge, "--data-root", str(root), "--results-dir", str(results)]
        code, judged = mis_eval([*args, "--no-progress"], capsys)
        assert code == 0, judged[-2000:]
    code, viewed = mis_eval(
        ["view", str(results), "--out", str(tmp_path / "viewer"), "--no-progress"], capsys
    )
    assert code == 0, viewed[-2000:]
    ((path, rec),) = find_runs([results])
    assert rec.model.args == (  # secrets masked; settings whose names merely contain "token" kept
        "model=m,api_key=***,max_new_tokens=1024,max_tokens_param=max_completion_tokens,"
        "base_url=http://***@h/v1?token=***"
    )
    written = [path, path.with_name(rec.samples_file), tmp_path / "viewer" / "index.html"]
    for f in written:
        text = f.read_text(encoding="utf-8")
        for secret in (KEY, "basic-pass-5555", "tok-in-url-42"):
            assert secret not in text, f"{secret} in {f.name}"
    assert "answer quoting ***" in written[1].read_text(encoding="utf-8")
    assert KEY not in judged + viewed


def test_run_passthrough_masks_credentials_in_urls_of_model_args() -> None:
    argv = ["--model", "mis_openai", "--model_args", "model=m,base_url=http://user:pass-in-arg-321@h/v1"]
    out = Redactor(secret_values(argv, {}))("model_args: model=m,base_url=http://user:pass-in-arg-321@h/v1")
    assert "pass-in-arg-321" not in out and "base_url=http://***@h/v1" in out


# -- item 13: non-finite numbers and non-text content from a server ---------------------------------
def test_nan_token_counts_are_unknown_and_noted_never_written_as_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recs = [record(i, question=f"Question {i} EXPECT=Safe/1") for i in (1, 2)]
    root = make_root(tmp_path / "data", records=recs)
    logs = write_logs(tmp_path / "logs", ["a", "b"], metrics=MIS_METRICS)
    with FakeOpenAIServer(reply=marker_reply, faults=lambda body, i: "nan_usage") as srv:
        (v,), judge = judge_once(srv, tmp_path)
        judge_arg = f"local:base_url={srv.base_url},model=fake-gpt,price_in=1,price_out=1,cache=off"
        args = ["judge", str(logs), "--judge", judge_arg, "--data-root", str(root)]
        code, out = mis_eval([*args, "--results-dir", str(tmp_path / "results"), "--no-progress"], capsys)
    assert v.status is Status.OK and (v.prompt_tokens, v.completion_tokens) == (0, 0)
    acct = judge.accounting()
    assert (acct["prompt_tokens"], acct["completion_tokens"], acct["invalid_usage"]) == (0, 0, 1)
    assert code == 0, out[-2000:]
    ((path, rec),) = find_runs([tmp_path / "results"])
    data = strict_json(path.read_text(encoding="utf-8"))  # a strict reader accepts the record
    assert data["accounting"]["cost_usd"] == 0 and data["accounting"]["invalid_usage"] == 2
    assert any("token counts" in n for n in rec.notes)
    for line in path.with_name(rec.samples_file).read_text(encoding="utf-8").splitlines():
        strict_json(line)


def test_nan_message_content_is_a_malformed_reply_counted_once_per_call(tmp_path: Path) -> None:
    with FakeOpenAIServer(reply=marker_reply, faults=lambda body, i: "nan_content") as srv:
        (v,), judge = judge_once(srv, tmp_path, max_retries=2, backoff=0.01)
        calls = srv.calls
    assert v.status is Status.ERROR and "message content is not text" in (v.error or ""), v.error
    assert "IntegrityError" not in (v.error or "")
    assert calls == 3 and v.calls == 3 and judge.accounting()["calls"] == 3
    assert cached_rows(tmp_path) == []


def test_nan_content_from_an_api_model_is_no_answer() -> None:
    with FakeOpenAIServer(reply="fine", faults=["nan_content", "nan_content"]) as srv:
        (out,) = generate(srv, max_retries=1)
    response, error = split_response(out)
    assert response is None and "not text" in (error or "") and srv.calls == 2


def test_record_writers_refuse_nan_rather_than_write_invalid_json(tmp_path: Path) -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    rec = mis_record("m", "mis_hard", random.Random(0), when)
    rec.accounting = {"cost_usd": float("nan")}
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_run(rec, [], tmp_path)
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_run(mis_record("m", "mis_hard", random.Random(0), when), [{"x": float("inf")}], tmp_path)
