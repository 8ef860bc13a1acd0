"""docs/adding-a-model.md cannot rot: its ToyVLM family file, copied as the guide says into a copy of
`model_adapters`, is found, renders the prompt the guide prints, and resolves as an lmms-eval model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.docs_support import block_after, guide

ROOT = Path(__file__).resolve().parents[1]
GUIDE = guide("adding-a-model.md")
FAMILY_FILE = "model_adapters/models/toyvlm.py"
QUESTION = "What do these show?"

PROBE = f"""
import json, model_adapters
from lmms_eval.models import get_model
from model_adapters.families import get_family
from model_adapters.registry import models

print(json.dumps({{
    "package": model_adapters.__file__,
    "models": models(),
    "prompt": get_family("toyvlm").layout.render({QUESTION!r}, 2),
    "resolved": [get_model(n).family_name for n in ("mis_toyvlm", "mis_toy")],
    "class": get_model("mis_toyvlm").__module__ + "." + get_model("mis_toyvlm").__name__,
}}))
"""


def test_the_guides_family_file_registers_renders_and_resolves(tmp_path: Path) -> None:
    source = block_after(GUIDE, f"`{FAMILY_FILE}`", "python")
    # a copy of the package plus the new file: the repository tree stays as it is
    shutil.copytree(
        ROOT / "model_adapters", tmp_path / "model_adapters", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / FAMILY_FILE).write_text(source, encoding="utf-8")
    assert not (ROOT / FAMILY_FILE).exists()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,  # sys.path[0]: the copy wins over the editable install
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["package"] == str(tmp_path / "model_adapters" / "__init__.py")
    assert out["models"]["mis_toyvlm"] == ["model_adapters.family_models.mis_toyvlm", ["mis_toy"]]
    assert out["prompt"] == block_after(GUIDE, f"`{QUESTION}`", "text").removesuffix("\n")
    assert (
        out["prompt"]
        == "<|user|>Picture 1: <image>\nPicture 2: <image>\nWhat do these show?<|end|><|assistant|>"
    )
    assert out["resolved"] == ["toyvlm", "toyvlm"]
    assert out["class"] == "model_adapters.family_models.mis_toyvlm"


def test_the_guides_family_file_passes_the_projects_linters(tmp_path: Path) -> None:
    path = tmp_path / "toyvlm.py"
    path.write_text(block_after(GUIDE, f"`{FAMILY_FILE}`", "python"), encoding="utf-8")
    ruff = str(Path(sys.executable).with_name("ruff"))
    config = ["--config", str(ROOT / "ruff.toml")]
    for args in (["check", *config, str(path)], ["format", "--check", *config, str(path)]):
        proc = subprocess.run([ruff, *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_guides_golden_line_and_commands_name_the_family() -> None:
    golden = block_after(GUIDE, "not computed", "python")
    q = "How do I {use} these? Answer {fully}."
    entry = eval("{" + golden + "}", {"Q": q})  # the dict entry as it goes into GOLDEN
    assert entry == {"toyvlm": f"<|user|>Picture 1: <image>\nPicture 2: <image>\n{q}<|end|><|assistant|>"}
    assert "--model mis_toyvlm --model_args pretrained=" in GUIDE
    assert "assert len(families) == 8" in (ROOT / "tests" / "test_adapters_prompts.py").read_text()
