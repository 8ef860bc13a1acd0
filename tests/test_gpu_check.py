"""The device check (benchmarks/gpu_check.py) runs here in its dry mode, so it cannot rot before a GPU
is lent; its reference visual-token rules agree with the transformers processors they check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mis_eval.testing.full_size import SPECS, internvl_tiles, qwen2_vl_tokens, write_checkpoint
from model_adapters.families import get_family
from model_adapters.hf_loading import load_processor

ROOT = Path(__file__).resolve().parents[1]
# visual tokens of one 1024x768 image, and of two in one prompt, as the transformers backend makes them
EXPECTED = {
    "qwen2_vl": (999, 1998),
    "llava_onevision": (4725, 1460),  # transformers: base view only when a prompt has several images
    "internvl2_5": (1280, 2560),
    "idefics3": (2197, 4394),
}


@pytest.mark.slow
def test_dry_run_prints_the_tables_and_every_check_holds(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    cmd = [sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| family | architecture of |" in proc.stdout and "| batch == one-at-a-time |" in proc.stdout
    assert "lmms_eval/vllm imported: none" in proc.stdout  # the GPU machine has neither
    assert "gpu_check: OK" in proc.stdout
    results = {r["family"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == set(EXPECTED)
    for family, (one, two) in EXPECTED.items():
        r = results[family]
        assert (r["tokens_one_image"], r["tokens_two_images"]) == (one, two), family
        assert r["expected_per_image"] == one and f"| {family} |" in proc.stdout
        assert r["fixed_length"] and r["equal_rows"] == r["n"] == 3, r
        assert r["first_divergence"] == [None] * 3
    assert results["llava_onevision"]["token_status"] == "known deviation, see note"
    assert {r["token_status"] for f, r in results.items() if f != "llava_onevision"} == {"as reference"}


def test_qwen2_vl_rule_gives_the_counts_the_reference_tests_pin() -> None:
    """The same counts test_adapters_reference_generation measures through the processor."""
    assert qwen2_vl_tokens(2048, 1536) == 4015
    assert qwen2_vl_tokens(256, 256) == 81
    assert qwen2_vl_tokens(28, 28) == 4
    assert internvl_tiles(1024, 1024) == 5 and internvl_tiles(448, 448) == 1


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(SPECS))
def test_reference_rules_agree_with_the_processors(family: str, tmp_path: Path) -> None:
    """For one image of several shapes, the rule written from the reference code and the published
    processor settings (as the adapter applies them) give the same number of visual tokens."""
    spec = SPECS[family]
    path, _ = write_checkpoint(spec, "tiny", tmp_path / family)
    fam = get_family(family)
    processor = load_processor(fam, str(path), False, **fam.hf_processor_kwargs)
    image_token = processor.tokenizer.convert_tokens_to_ids(spec.image_token)
    for width, height in [(1024, 768), (700, 1100), (2000, 500), (300, 300)]:
        layout = fam.layout
        owner = layout.template_owner(processor)
        prompt = layout.render("Which?", 1, owner, fam.hf_image_token)
        ids = processor(text=[prompt], images=[[Image.new("RGB", (width, height))]], return_tensors="pt")[
            "input_ids"
        ]
        assert int((ids == image_token).sum()) == spec.expected_tokens(width, height), (width, height)
