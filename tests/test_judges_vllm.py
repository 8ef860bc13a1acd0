"""The in-process vLLM judge without vllm installed (the real engine: tests/test_vllm_engine.py)."""

from __future__ import annotations

import importlib.util

import pytest

from judges.registry import get_judge, list_judges


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_judge_without_vllm_says_what_to_do(tmp_path):
    assert "vllm" in list_judges()
    with pytest.raises(RuntimeError, match=r"needs the vllm package.*judge 'local'"):
        get_judge("vllm", model="Qwen/Qwen2-VL-7B-Instruct", cache=str(tmp_path / "c.sqlite"))
