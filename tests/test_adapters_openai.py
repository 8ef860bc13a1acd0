"""The API adapter against a real local OpenAI-compatible server (mis_eval.testing.fake_openai)."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mis_eval.core.samples import split_response
from mis_eval.testing.fake_openai import FakeOpenAIServer, prompt_text
from model_adapters.openai_api import MisOpenAI
from tests.adapters_support import image, instances

KEY = "sk-test-SECRET0123456789"
MIS_KWARGS = {"max_new_tokens": 1024, "temperature": 0, "do_sample": False, "until": []}


def docs(n: int) -> list[dict[str, Any]]:
    return [
        {
            "question": f"question {i}: how are these used together?",
            "images": [image(20 + i, 10, (255, 0, 0)), image(10, 30 + i, (0, 0, 255))],
        }
        for i in range(n)
    ]


def run(srv: FakeOpenAIServer, items: list[dict[str, Any]], **args: Any) -> list[str]:
    model = MisOpenAI(
        model="fake-gpt", base_url=srv.base_url, api_key=KEY, **{"backoff": 0.01, "max_retries": 3, **args}
    )
    reqs, task_dict = instances(items, MIS_KWARGS)
    model.task_dict = task_dict
    return model.generate_until(reqs)


def decode(url: str) -> Image.Image:
    head, data = url.split(",", 1)
    assert head == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_images_go_first_in_order_as_base64_then_the_question() -> None:
    with FakeOpenAIServer(reply="I cannot help with that.") as srv:
        out = run(srv, docs(3))
    assert out == ["I cannot help with that."] * 3
    bodies = sorted(srv.requests, key=prompt_text)
    for i, body in enumerate(bodies):
        assert body["model"] == "fake-gpt" and body["temperature"] == 0 and body["max_tokens"] == 1024
        assert "stop" not in body and "top_p" not in body
        (message,) = body["messages"]
        first, second, text = message["content"]
        assert text == {"type": "text", "text": f"question {i}: how are these used together?"}
        assert decode(first["image_url"]["url"]).size == (20 + i, 10)
        assert decode(second["image_url"]["url"]).size == (10, 30 + i)
    assert all(auth == f"Bearer {KEY}" for auth in srv.auth)


def test_rate_limits_wait_for_retry_after_not_the_backoff() -> None:
    # the backoff would wait 20 s; the server asks for 0.3 s
    with FakeOpenAIServer(reply="fine", faults=["429", "429", None], retry_after=0.3) as srv:
        start = time.monotonic()
        out = run(srv, docs(1), backoff=20, max_wait=20)
        elapsed = time.monotonic() - start
    assert out == ["fine"] and srv.calls == 3
    assert 0.6 <= elapsed < 5


def test_server_errors_and_broken_answers_are_retried() -> None:
    with FakeOpenAIServer(reply="fine", faults=["500", "malformed", None]) as srv:
        assert run(srv, docs(1)) == ["fine"]
    assert srv.calls == 3


def test_a_request_that_finally_fails_is_marked_failed_not_answered() -> None:
    def fault(body: dict[str, Any], index: int) -> str | None:
        return "500" if "question 1" in prompt_text(body) else None

    with FakeOpenAIServer(reply="fine", faults=fault) as srv:
        out = run(srv, docs(3), max_retries=2)
    assert out[0] == out[2] == "fine"
    response, error = split_response(out[1])
    assert response is None and error is not None
    assert "HTTP 500" in error and "after 3 attempts" in error and "t/test/1" in error
    assert sum("question 1" in prompt_text(b) for b in srv.requests) == 3


def test_auth_errors_fail_at_once_and_never_leak_the_key() -> None:
    with FakeOpenAIServer(faults=["401"]) as srv:  # this server echoes the Authorization header
        (out,) = run(srv, docs(1))
    assert srv.calls == 1
    response, error = split_response(out)
    assert response is None and error is not None and "HTTP 401" in error
    assert KEY not in out and "SECRET" not in out
    model = MisOpenAI(model="fake-gpt", base_url=srv.base_url, api_key=KEY)
    assert KEY not in repr(model)


def test_a_model_refusal_is_its_answer() -> None:
    with FakeOpenAIServer(faults=["refusal"]) as srv:
        assert run(srv, docs(1)) == ["I'm sorry, I can't assist with that."]


def test_concurrency_is_bounded() -> None:
    with FakeOpenAIServer(reply="ok", latency=0.15) as srv:
        start = time.monotonic()
        out = run(srv, docs(12), num_concurrent=4)
        elapsed = time.monotonic() - start
    assert out == ["ok"] * 12
    assert srv.max_inflight == 4
    assert elapsed < 12 * 0.15  # concurrent, not one at a time


def test_cache_resumes_and_retries_only_what_failed(tmp_path: Path) -> None:
    cache = tmp_path / "api_cache.jsonl"

    def fault(body: dict[str, Any], index: int) -> str | None:
        return "500" if "question 2" in prompt_text(body) else None

    with FakeOpenAIServer(reply="first run", faults=fault) as srv:
        first = run(srv, docs(4), cache=str(cache), max_retries=0)
        port = srv.port
    assert split_response(first[2])[0] is None and first.count("first run") == 3
    with FakeOpenAIServer(reply="second run", port=port) as srv:  # the same endpoint, restarted
        second = run(srv, docs(4), cache=str(cache))
    assert srv.calls == 1 and "question 2" in prompt_text(srv.requests[0])
    assert second == ["first run", "first run", "second run", "first run"]
    assert KEY not in cache.read_text()


def test_missing_api_key_for_openai_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="set the environment variable GEMINI_KEY"):
        MisOpenAI(model="gpt-4o", api_key_env="GEMINI_KEY")
    with pytest.raises(ValueError, match="unknown model args for mis_openai: colour"):
        MisOpenAI(model="gpt-4o", api_key=KEY, colour="red")
