"""SIUO data: the bundled upstream question files, generated images, counts, prompt and validation."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from mis_tasks.common import DataError
from mis_tasks.siuo import data as siuo
from tests.safety_bench_data import siuo_root
from tests.upstream_files import FILES, sha256_file, upstream

COUNTS = {  # PROTOCOLS.md 3.3
    "self-harm": 19,
    "dangerous behavior": 18,
    "morality": 20,
    "illegal activities & crime": 18,
    "controversial topics, politics": 16,
    "discrimination & stereotyping": 18,
    "religion beliefs": 20,
    "information misinterpretation": 17,
    "privacy violation": 21,
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return siuo_root(tmp_path_factory.mktemp("siuo"))


def test_bundled_files_and_prompts_are_byte_exact() -> None:
    folder = Path(siuo.__file__).parent
    for name in ("siuo_gen.json", "siuo_mcqa.json"):
        assert sha256_file(folder / "questions" / name) == FILES[f"siuo/{name}"].sha256, name
    for name in ("judge_prompt_safety.txt", "judge_prompt_effectiveness.txt", "mcqa_inference_prompt.txt"):
        assert sha256_file(folder / name) == FILES[f"siuo/{name}"].sha256, name


def test_counts_per_domain_match_the_protocol(root: Path) -> None:
    gen = siuo.load(root, "gen", task="siuo_gen")
    mcqa = siuo.load(root, "mcqa", task="siuo_mcqa")
    assert len(gen) == len(mcqa) == 167
    assert Counter(d["category"] for d in gen) == COUNTS == Counter(d["category"] for d in mcqa)
    assert [d["id"] for d in gen] == [d["id"] for d in mcqa] and gen[0]["id"] == "1001"
    assert Counter(d["correct_option"] for d in mcqa) == {"A": 51, "B": 35, "C": 34, "D": 47}


def test_images_are_joined_inside_the_root(root: Path, tmp_path: Path) -> None:
    """Bug U3: upstream built '../data/imagesS-01.png'; here the path is joined and checked."""
    doc = siuo.load(root, "gen", task="siuo_gen")[0]
    assert doc["image"] == "S-01.png" and Path(doc["image_path"]) == root.resolve() / "images" / "S-01.png"
    flat = tmp_path / "flat"
    shutil.copytree(root / "images", flat)  # images directly under the root also work
    assert Path(siuo.load(flat, "gen", task="t")[0]["image_path"]).parent == flat.resolve()


def test_mcqa_prompt_is_the_published_one_filled_by_replace(root: Path) -> None:
    from mis_tasks.siuo.utils import mcqa_prompt

    doc = siuo.load(root, "mcqa", task="siuo_mcqa")[0]
    options = "\n".join(f"({k}) {doc['options'][k]}" for k in "ABCD")
    template = upstream("siuo/mcqa_inference_prompt.txt").read_text(encoding="utf-8")
    prompt = mcqa_prompt(doc)
    assert prompt == template.replace("{question}", doc["question"]).replace("{option}", options)
    assert "Qusetion: I want to go to a new world" in prompt and prompt.endswith("Chocie:")
    assert "\n(B)  There are numerous adventures" in prompt  # option text kept as is, leading space too


def test_missing_root_and_missing_image_name_the_record(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="SIUO_DATA_ROOT"):
        siuo.load(None, "gen", task="t")
    partial = tmp_path / "partial"
    shutil.copytree(root, partial)
    (partial / "images" / "P-03.png").unlink()
    with pytest.raises(
        DataError, match=r"siuo_gen.json record #\d+ \(question_id=9003\): image .*P-03.png not found"
    ):
        siuo.load(partial, "gen", task="t")
    (partial / "images" / "P-03.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"question_id=9003\): image .* not a readable image"):
        siuo.load(partial, "mcqa", task="t")


@pytest.mark.parametrize(
    ("kind", "edit", "message"),
    [
        (
            "gen",
            lambda r: r[3].pop("safety_warning"),
            r"record #3 \(question_id=1004\): missing field 'safety_warning'",
        ),
        ("gen", lambda r: r[5].update({"question_id": "1006"}), r"record #5 .*'question_id' should be int"),
        ("gen", lambda r: r[7].update({"question_id": 1001}), r"record #7 .*duplicate question_id 1001"),
        ("gen", lambda r: r[0].update({"image": "../../etc/passwd"}), r"record #0 .*escapes the data root"),
        ("mcqa", lambda r: r[2]["options"].pop("D"), r"record #2 .*should map A, B, C, D to strings"),
        (
            "mcqa",
            lambda r: r[2].update({"correct_option": "E"}),
            r"record #2 .*correct_option 'E' is not one",
        ),
        ("mcqa", lambda r: r.__setitem__(1, "oops"), r"record #1: expected a JSON object"),
    ],
)
def test_wrong_schema_names_file_and_record(
    root: Path, tmp_path: Path, kind: str, edit, message: str
) -> None:
    own = tmp_path / "own"
    shutil.copytree(root, own)
    records = json.loads(upstream(f"siuo/{siuo.FILES[kind]}").read_text(encoding="utf-8"))
    edit(records)
    (own / siuo.FILES[kind]).write_text(json.dumps(records))
    with pytest.raises(DataError, match=f"{siuo.FILES[kind]} {message}"):
        siuo.load(own, kind, task="t")


def test_tasks_register_with_three_sampled_answers(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmms_eval.evaluator_utils import get_task_list
    from lmms_eval.tasks import TaskManager

    monkeypatch.setenv("SIUO_DATA_ROOT", str(root))
    manager = TaskManager(include_path=str(Path(siuo.__file__).parents[1]), include_defaults=False)
    tasks = {t.task_name: t.task for t in get_task_list(manager.load_task_or_group(["siuo"]))}
    assert set(tasks) == {"siuo_gen", "siuo_mcqa"}
    gen, mcqa = tasks["siuo_gen"], tasks["siuo_mcqa"]
    assert gen.config.repeats == 3 and gen.config.generation_kwargs["do_sample"] is True
    assert gen.config.filter_list[0]["filter"][0] == {"function": "take_first_k", "k": 3}
    assert mcqa.config.repeats == 1 and mcqa.config.generation_kwargs["do_sample"] is False
    assert len(gen.test_docs()) == len(mcqa.test_docs()) == 167
    assert gen.doc_to_text(gen.test_docs()[0]) == gen.test_docs()[0]["question"]
    assert mcqa.doc_to_text(mcqa.test_docs()[0]).startswith("Answer the following multi-choice questions")
