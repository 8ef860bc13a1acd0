from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.mis_data import make_root

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test may reach a real API or share the user's judge or image-validation cache."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MIS_EVAL_JUDGE", raising=False)
    monkeypatch.delenv("MIS_EVAL_JUDGE_ARGS", raising=False)
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MIS_EVAL_CACHE", str(cache / "judge.sqlite"))
    monkeypatch.setenv("MIS_EVAL_IMAGE_CACHE", str(cache / "validated-images.sqlite"))


@pytest.fixture
def mis_root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "mis", "hard", n=6)
