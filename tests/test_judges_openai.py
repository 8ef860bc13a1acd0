"""The OpenAI-compatible judges against a real local HTTP server (mis_eval.testing.fake_openai)."""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path

import pytest
from PIL import Image

from judges.base import JudgeRequest, Status
from judges.registry import get_judge, parse_options
from judges.rubric import Rubric
from mis_eval.testing.fake_openai import REFUSAL, FakeOpenAIServer, marker_reply
from mis_tasks.mis.parsing import parse_mis
from tests.upstream_files import upstream

TEMPLATE = upstream("mis/judge_prompt.txt").read_text(encoding="utf-8")
SCHEMA = {
    "type": "object",
    "properties": {
        "label_perception": {"type": "string", "enum": [f"Perception Level{i}" for i in (1, 2, 3)]},
        "label_str": {"type": "string", "enum": ["Safe", "Unsafe"]},
    },
    "required": ["label_perception", "label_str"],
    "additionalProperties": False,
}
RUBRIC = Rubric(
    name="mis",
    template=TEMPLATE,
    parse=parse_mis,
    system="You are a helpful assistant.",
    max_tokens=128,
    temperature=0.0,
    response_format=SCHEMA,
    keyword_labels=("safe", "unsafe"),
)
KEY = "sk-LEAKCHECK-7f3a9c2d1e"
FAST = {"backoff": 0.01, "timeout": 5, "max_retries": 2}


@pytest.fixture
def images(tmp_path: Path) -> tuple[str, str]:
    a, b = tmp_path / "a.png", tmp_path / "b.jpg"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(a)
    Image.new("RGB", (8, 8), (0, 0, 255)).save(b)
    return str(a), str(b)


def requests(images: tuple[str, str], n: int = 4) -> list[JudgeRequest]:
    out = []
    for i in range(n):
        label, perc = ("Unsafe", 1) if i % 2 else ("Safe", 1 + i % 3)
        fields = {"question": f"question {i}?", "response": f"answer {i} EXPECT={label}/{perc}"}
        out.append(JudgeRequest(key=f"mis_hard/{i}", rubric=RUBRIC, fields=fields, images=images))
    return out


def local(srv: FakeOpenAIServer, tmp_path: Path, **opts: object):
    return get_judge(
        "local", base_url=srv.base_url, model="judge-x", cache=str(tmp_path / "c.sqlite"), **opts
    )


def test_verdicts_and_reference_message_format(images, tmp_path):
    with FakeOpenAIServer(reply=marker_reply) as srv:
        verdicts = local(srv, tmp_path, **FAST).judge(requests(images), progress=False)
    assert [(v.status, v.label, v.detail.get("perception")) for v in verdicts] == [
        (Status.OK, "safe", 1),
        (Status.OK, "unsafe", 1),
        (Status.OK, "safe", 3),
        (Status.OK, "unsafe", 1),
    ]
    (body,) = [b for b in srv.requests if "question 0?" in json.dumps(b)]
    assert body["model"] == "judge-x" and body["temperature"] == 0.0 and body["max_tokens"] == 128
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    system, user = body["messages"]
    assert system == {"role": "system", "content": "You are a helpful assistant."}
    img1, img2, text = user["content"]  # images first, in order, then the text (MIS reference)
    assert img1["image_url"]["url"].startswith("data:image/png;base64,")
    assert img2["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert base64.b64decode(img1["image_url"]["url"].split(",", 1)[1]) == Path(images[0]).read_bytes()
    assert text["type"] == "text" and "<question>: question 0?" in text["text"]
    assert "answer 0 EXPECT=Safe/1" in text["text"]


def test_structured_output_can_be_turned_off(images, tmp_path):
    with FakeOpenAIServer(reply=marker_reply) as srv:
        local(srv, tmp_path, structured=False, **FAST).judge(requests(images, 1), progress=False)
    assert "response_format" not in srv.requests[0]


def test_429_retry_after_is_honored_and_counted(images, tmp_path):
    with FakeOpenAIServer(reply=marker_reply, faults=["429"], retry_after=0.4) as srv:
        judge = local(srv, tmp_path, concurrency=1, **FAST)
        t0 = time.perf_counter()
        (v,) = judge.judge(requests(images, 1), progress=False)
        elapsed = time.perf_counter() - t0
    assert v.ok and v.label == "safe" and v.retries == 1 and v.calls == 2
    assert elapsed >= 0.4  # waited what the server asked, not the 0.01 s backoff
    assert judge.accounting()["retries"] == 1 and judge.accounting()["calls"] == 2


def test_500_is_retried(images, tmp_path):
    with FakeOpenAIServer(reply=marker_reply, faults=["500", "500"]) as srv:
        judge = local(srv, tmp_path, concurrency=1, **FAST)
        (v,) = judge.judge(requests(images, 1), progress=False)
    assert v.ok and v.calls == 3 and v.retries == 2


def test_persistent_500_becomes_error_not_a_label(images, tmp_path):
    with FakeOpenAIServer(reply=marker_reply, faults=lambda body, i: "500") as srv:
        judge = local(srv, tmp_path, **FAST)
        verdicts = judge.judge(requests(images, 2), progress=False)
    assert all(v.status is Status.ERROR and v.label is None for v in verdicts)
    assert "HTTP 500" in (verdicts[0].error or "") and verdicts[0].calls == 3
    acct = judge.accounting()
    assert acct["errors"] == 2 and acct["calls"] == 6 and acct["retries"] == 4


def test_timeout_becomes_error_after_retries(images, tmp_path):
    with FakeOpenAIServer(reply=marker_reply, faults=lambda body, i: "hang", hang=10) as srv:
        judge = local(srv, tmp_path, timeout=0.3, max_retries=1, backoff=0.01)
        t0 = time.perf_counter()
        (v,) = judge.judge(requests(images, 1), progress=False)
        assert time.perf_counter() - t0 < 5
    assert v.status is Status.ERROR and "timed out" in (v.error or "") and v.calls == 2


def test_malformed_body_is_retried_then_error(images, tmp_path):
    with FakeOpenAIServer(reply=marker_reply, faults=["malformed"]) as srv:
        (v,) = local(srv, tmp_path, **FAST).judge(requests(images, 1), progress=False)
    assert v.ok and v.retries == 1
    with FakeOpenAIServer(reply=marker_reply, faults=lambda body, i: "malformed") as srv:
        (v,) = local(srv, tmp_path / "other", **FAST).judge(requests(images, 1), progress=False)
    assert v.status is Status.ERROR and v.label is None


def test_garbage_answer_is_unparseable(images, tmp_path):
    with FakeOpenAIServer(reply=marker_reply, faults=["garbage"]) as srv:
        judge = local(srv, tmp_path, **FAST)
        (v,) = judge.judge(requests(images, 1), progress=False)
    assert v.status is Status.UNPARSEABLE and v.label is None and "Lorem ipsum" in v.raw
    assert judge.accounting()["unparseable"] == 1


def test_refusal_is_error_and_not_cached(images, tmp_path):
    with FakeOpenAIServer(reply=marker_reply, faults=["refusal"]) as srv:
        (v,) = local(srv, tmp_path, **FAST).judge(requests(images, 1), progress=False)
        assert v.status is Status.ERROR and v.label is None and "refused" in (v.error or "")
        assert v.raw == REFUSAL
        (again,) = local(srv, tmp_path, **FAST).judge(requests(images, 1), progress=False)
    assert again.ok and not again.cached and srv.calls == 2  # the refusal was asked again


def test_bad_image_is_an_error_naming_the_file(images, tmp_path):
    req = JudgeRequest(
        key="mis_real/7",
        rubric=RUBRIC,
        fields={"question": "q", "response": "r"},
        images=(images[0], str(tmp_path / "missing.png")),
    )
    with FakeOpenAIServer(reply=marker_reply) as srv:
        (v,) = local(srv, tmp_path, **FAST).judge([req], progress=False)
    assert v.status is Status.ERROR and "mis_real/7" in (v.error or "") and "missing.png" in (v.error or "")
    assert srv.calls == 0


def test_concurrency_is_bounded(images, tmp_path):
    with FakeOpenAIServer(reply=marker_reply, latency=0.05) as srv:
        verdicts = local(srv, tmp_path, concurrency=3, **FAST).judge(requests(images, 12), progress=False)
    assert all(v.ok for v in verdicts) and srv.max_inflight == 3


def test_api_key_never_leaks(images, tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    cache = tmp_path / "c.sqlite"
    with FakeOpenAIServer(reply=marker_reply, faults=["401"]) as srv:
        judge = get_judge("gpt4o", base_url=srv.base_url, cache=str(cache), concurrency=1, **FAST)
        verdicts = judge.judge(requests(images, 3), progress=True)
    assert srv.auth[0] == f"Bearer {KEY}"  # the key was really used
    assert verdicts[0].status is Status.ERROR and "HTTP 401" in (verdicts[0].error or "")
    assert "***" in (verdicts[0].error or "")  # the server echoed it; we redacted it
    dumped = json.dumps([v.to_dict() for v in verdicts]) + json.dumps(judge.accounting())
    dumped += repr(judge.info([RUBRIC]))
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("c.sqlite*"))
    out = capsys.readouterr()
    for text in (dumped, caplog.text, out.out, out.err, stored.decode("latin-1")):
        assert KEY not in text and KEY[3:15] not in text


def test_api_key_is_not_an_option(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(ValueError, match="api_key_env"):
        get_judge("gpt4o", **parse_options(f"api_key={KEY}"))
    with pytest.raises(ValueError, match="unknown gpt4o judge option"):
        get_judge("gpt4o", **parse_options("modle=gpt-4o"))


def test_gpt4o_pins_a_dated_model_and_needs_a_key(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        get_judge("gpt4o", cache="off")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    judge = get_judge("gpt4o", **parse_options(f"concurrency=8,cache={tmp_path / 'c.sqlite'}"))
    info = judge.info([RUBRIC])
    assert info.model == "gpt-4o-2024-08-06" and info.provider == "openai" and info.approximation is None
    assert info.prompt_sha256 == {"mis": RUBRIC.sha256} and info.settings["concurrency"] == 8
    with pytest.raises(ValueError, match="model"):
        get_judge("openai", cache="off")


def test_accounting_reports_tokens_and_cost(images, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAIServer(reply=marker_reply) as srv:
        judge = get_judge("gpt4o", base_url=srv.base_url, cache=str(tmp_path / "c.sqlite"), **FAST)
        judge.judge(requests(images, 2), progress=False)
    acct = judge.accounting()
    assert acct["model"] == "gpt-4o-2024-08-06" and acct["provider"] == "openai"
    assert acct["prompt_sha256"] == {"mis": RUBRIC.sha256}
    assert acct["calls"] == 2 and acct["prompt_tokens"] > 0 and acct["completion_tokens"] > 0
    expected = (acct["prompt_tokens"] * 2.5 + acct["completion_tokens"] * 10.0) / 1e6
    assert acct["cost_usd"] == pytest.approx(expected, abs=1e-6)
    local_acct = local(srv, tmp_path, **FAST).accounting()
    assert local_acct["cost_usd"] is None  # unknown price: no guess
