"""MIS-format data through lmms-eval (`mis-eval run`) with our model adapters, checking what is saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mis_eval.core.samples import FAILED_SENTINEL, split_response
from mis_eval.records import find_runs
from mis_eval.testing.fake_openai import FakeOpenAIServer, prompt_text
from tests.adapters_support import TINY_PROCESSOR_KWARGS, instances, tiny_models_fixture
from tests.mis_data import make_root

KEY = "sk-e2e-SECRET9876543210"
tiny_models = tiny_models_fixture()


def mis_run(args: list[str], cwd: Path, data_root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mis_eval.cli", "run", "--judge", "keyword", *args, "--tasks", "mis_hard"]
    return subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MIS_DATA_ROOT": str(data_root), **env},
    )


def logged_responses(cwd: Path) -> dict[int, str]:
    (samples,) = (cwd / "logs").rglob("*_samples_mis_hard.jsonl")
    out = {}
    for line in samples.read_text().splitlines():
        row = json.loads(line)
        resp = row["filtered_resps"]
        out[row["doc_id"]] = resp[0] if isinstance(resp, list) else resp
    return out


def mis_docs(root: Path) -> list[dict[str, Any]]:
    records = json.loads((root / "mis_hard.json").read_text())
    return [
        {
            "question": r["question"],
            "images": [Image.open(root / r[k]).convert("RGB") for k in ("image_path1", "image_path2")],
        }
        for r in records
    ]


@pytest.mark.slow
def test_tiny_qwen2_vl_through_lmms_eval_saves_its_own_answers(
    tiny_models: Callable[[str], Path], tmp_path: Path
) -> None:
    root = make_root(tmp_path / "data", "hard", n=5)
    kwargs = json.dumps(TINY_PROCESSOR_KWARGS["qwen2_vl"])
    model_args = f"pretrained={tiny_models('qwen2_vl')},backend=hf,max_new_tokens=8,processor_kwargs={kwargs}"
    args = ["--model", "mis_qwen2_vl", "--model_args", model_args, "--batch_size", "3"]
    proc = mis_run(args, tmp_path, root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = logged_responses(tmp_path)
    assert sorted(saved) == [0, 1, 2, 3, 4]
    # what the adapter ran with reaches the run record through lmms-eval's logged gen_kwargs
    (record,) = [r for _, r in find_runs([tmp_path / "results"])]
    adapter = record.generation["adapter"]
    assert (adapter["family"], adapter["backend"], adapter["max_new_tokens"]) == ("qwen2_vl", "hf", 8)
    assert adapter["image_processing"] == TINY_PROCESSOR_KWARGS["qwen2_vl"]
    assert adapter["sampling"] == "explicit, as vLLM" and len(adapter["deviations"]) == 2  # both model args
    assert record.generation["max_new_tokens"] == 1024  # the task's own setting, kept beside it

    # the same model in this process, one request at a time, on the same records
    from model_adapters.family_models import MODELS

    model = MODELS["mis_qwen2_vl"](
        pretrained=str(tiny_models("qwen2_vl")),
        backend="hf",
        batch_size=1,
        max_new_tokens=8,
        processor_kwargs=TINY_PROCESSOR_KWARGS["qwen2_vl"],
    )
    reqs, model.task_dict = instances(mis_docs(root), {"max_new_tokens": 1024, "temperature": 0, "until": []})
    expected = model.generate_until(reqs)
    assert [saved[i] for i in range(5)] == expected
    assert all(split_response(t)[1] is None for t in expected)


@pytest.mark.slow
def test_failed_api_requests_are_saved_as_failures_and_judged_as_errors(tmp_path: Path) -> None:
    root = make_root(tmp_path / "data", "hard", n=4)

    def fault(body: dict[str, Any], index: int) -> str | None:
        return "500" if "(3)" in prompt_text(body) else None

    with FakeOpenAIServer(reply="I'm sorry, I can't help with that.", faults=fault) as srv:
        model_args = f"model=fake-gpt,base_url={srv.base_url},max_retries=1,backoff=0.01"
        proc = mis_run(
            ["--model", "mis_openai", "--model_args", model_args], tmp_path, root, OPENAI_API_KEY=KEY
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(auth == f"Bearer {KEY}" for auth in srv.auth)
    saved = logged_responses(tmp_path)
    failed = [i for i, text in saved.items() if text.startswith(FAILED_SENTINEL)]
    assert failed == [2]  # record id 3
    assert "HTTP 500" in saved[2]
    (judged,) = (tmp_path / "results").rglob("*.samples.jsonl")
    rows = {json.loads(line)["doc"]["id"]: json.loads(line) for line in judged.read_text().splitlines()}
    assert rows["3"]["response"] is None
    error = rows["3"]["generation_error"]
    assert "mis_hard/test/2 (id=3)" in error and "HTTP 500" in error
    assert all(v["status"] == "ok" for i in ("1", "2", "4") for v in rows[i]["verdicts"].values())
    assert all(v["status"] != "ok" for v in rows["3"]["verdicts"].values())  # never judged as an answer
    ((_, record),) = find_runs([tmp_path / "results"])
    assert record.counts.generation_failed == 1
    assert record.metrics["ASR"].n == 3 and record.metrics["ASR"].n_excluded == 1  # ERROR, not in the rate
    everything = (
        proc.stdout
        + proc.stderr
        + "".join(
            p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".png"
        )
    )
    assert KEY not in everything
