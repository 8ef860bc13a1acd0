"""lmms-eval 0.7.3's own chat models on the MIS tasks: what reaches the model.

Its `openai` model runs `mis_hard` against the local fake server (real HTTP), and its `huggingface`
model gets the task's requests on a tiny Gemma 3 (its processor needs no torchvision). Both are chat
models, which lmms-eval hands message-shaped requests; the MIS tasks make them
(mis_tasks/lmms_task.py, mis_tasks/discovery.py). The findings are in model_adapters/README.md.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from mis_eval.records import find_runs
from mis_eval.testing.fake_openai import FakeOpenAIServer
from tests.adapters_support import tiny_models_fixture
from tests.mis_data import make_root

pytestmark = pytest.mark.slow
tiny_models = tiny_models_fixture()
KEY = "sk-stock-SECRET1234567890"


def records(root: Path) -> list[dict[str, Any]]:
    return list(json.loads((root / "mis_hard.json").read_text()))


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    a, b = a.convert("RGB"), b.convert("RGB")
    return a.size == b.size and ImageChops.difference(a, b).getbbox() is None


def decoded(item: dict[str, Any]) -> Image.Image:
    url = item["image_url"]["url"]
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def paper_layout(root: Path, rec: dict[str, Any], images: list[Image.Image], text: str) -> None:
    """Both of the record's images, in order, then its question unchanged."""
    assert len(images) == 2
    for image, key in zip(images, ("image_path1", "image_path2"), strict=True):
        assert same_pixels(image, Image.open(root / rec[key])), key
    assert text == rec["question"]


def test_lmms_eval_openai_model_sends_the_paper_layout(tmp_path: Path) -> None:
    root = make_root(tmp_path / "data", "hard", n=4)
    # mis_hard/4's requests fail (HTTP 500 on every try): lmms-eval logs a marker as its "answer"
    fail = "(4)"
    with FakeOpenAIServer(
        reply="I cannot help with that.",
        faults=lambda body, i: "500" if fail in json.dumps(body) else None,
    ) as server:
        model_args = f"model=fake-vlm,base_url={server.base_url},max_retries=2,retry_backoff_s=0"
        cmd = [sys.executable, "-m", "mis_eval.cli", "run", "--judge", "keyword", "--model", "openai"]
        cmd += ["--model_args", model_args, "--tasks", "mis_hard", "--output_path", "logs"]
        env = {**os.environ, "MIS_DATA_ROOT": str(root), "OPENAI_API_KEY": KEY}
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        bodies = list(server.requests)
    assert proc.returncode == 0, proc.stderr[-3000:]  # generation failures are counted, not unusable verdicts
    by_question = {}
    for body in bodies:
        (message,) = body["messages"]
        assert message["role"] == "user" and [c["type"] for c in message["content"]] == [
            "image_url",
            "image_url",
            "text",
        ]
        # the paper's decoding: greedy, the task's 1024 tokens, no stop string
        assert (body["max_tokens"], body["temperature"], "stop" in body) == (1024, 0, False)
        by_question[message["content"][2]["text"]] = message
    recs = records(root)
    assert sorted(by_question) == sorted(r["question"] for r in recs)
    for rec in recs:
        content = by_question[rec["question"]]["content"]
        paper_layout(root, rec, [decoded(c) for c in content[:2]], content[2]["text"])

    # lmms-eval's failure marker is a failed generation, excluded and counted, never judged as an answer
    ((path, record),) = find_runs([tmp_path / "results"])
    assert (record.counts.samples, record.counts.generation_failed) == (4, 1)
    rows = [json.loads(line) for line in (path.parent / record.samples_file).read_text().splitlines()]
    (failed,) = [r for r in rows if r["response"] is None]
    assert failed["doc"]["id"] == "4" and "LMMS_EVAL_REQUEST_FAILED" in failed["generation_error"]
    assert all(r["verdicts"]["mis"]["status"] == "ok" for r in rows if r is not failed)
    for written in (tmp_path / "results").rglob("*"):
        assert not written.is_file() or KEY not in written.read_text(errors="ignore")


def test_lmms_eval_huggingface_model_gets_the_paper_layout_then_fails_on_transformers_5(
    tiny_models: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lmms-eval 0.7.3's `huggingface` chat model renders the checkpoint's chat template over the task's
    messages, then calls the processor with `audios=`, which transformers 5 refuses for every processor."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.models import get_model

    root = make_root(tmp_path / "data", "hard", n=2)
    monkeypatch.setenv("MIS_DATA_ROOT", str(root))
    path = tiny_models("gemma3")
    lm = get_model("huggingface")(pretrained=str(path), device="cpu", device_map="cpu")
    calls: list[dict[str, Any]] = []
    processor = lm.processor
    real_call = type(processor).__call__

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(type(processor), "__call__", recording)
    with pytest.raises(ValueError, match="keyword argument `audios` which is deprecated"):
        simple_evaluate(model=lm, tasks=["mis_hard"], batch_size=1, gen_kwargs="max_new_tokens=4")
    (call,) = calls  # the first request reached the processor; nothing was generated
    (text,) = call["text"]
    (rec,) = [r for r in records(root) if r["question"] in text]
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}]}]
    messages[0]["content"].append({"type": "text", "text": rec["question"]})
    assert text == processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    paper_layout(root, rec, call["images"], rec["question"])
    assert call["audios"] == [] and call["videos"] == []
