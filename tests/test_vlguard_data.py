"""VLGuard test data: a synthetic test.json (upstream format and counts), generated images, validation."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from mis_tasks.common import DataError
from mis_tasks.vlguard import data as vlg
from tests.safety_bench_data import vlguard_root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return vlguard_root(tmp_path_factory.mktemp("vlguard"))


def test_test_json_is_not_bundled() -> None:
    """Its license is unknown: it is read from the user's data root only."""
    assert not list(Path(vlg.__file__).parent.rglob("test.json"))
    assert not list(Path(vlg.__file__).parent.rglob("gpt4_safe_safes.json"))


def test_subset_counts_match_the_protocol(root: Path) -> None:
    subsets = {s: vlg.load_subset(root, s, task=f"vlguard_{s}") for s in vlg.SUBSETS}
    assert {s: len(d) for s, d in subsets.items()} == {"safe_safes": 558, "safe_unsafes": 558, "unsafes": 442}
    unsafes = subsets["unsafes"]
    assert Counter(d["harmful_category"] for d in unsafes) == {
        "risky behavior": 270,
        "discrimination": 85,
        "privacy": 69,
        "deception": 18,
    }
    assert Counter(d["harmful_subcategory"] for d in unsafes) == {
        "sexually explicit": 111,
        "violence": 68,
        "political": 57,
        "professional advice": 34,
        "race": 40,
        "sex": 31,
        "other": 14,
        "personal data": 69,
        "disinformation": 18,
    }
    safe_sources = Counter(d["source"] for d in subsets["safe_safes"])
    assert safe_sources == {"privacyAlert": 239, "hatefulMemes": 84, "HOD": 107, "bad_ads": 87, "harm-p": 41}
    assert Counter(d["source"] for d in unsafes) == {
        "privacyAlert": 159,
        "hatefulMemes": 116,
        "HOD": 93,
        "bad_ads": 15,
        "harm-p": 59,
    }


def test_each_subset_takes_its_own_instruction(root: Path) -> None:
    raw = {r["id"]: r for r in json.loads((root / "test.json").read_text(encoding="utf-8"))}
    safe = vlg.load_subset(root, "safe_safes", task="a")[0]
    unsafe_q = vlg.load_subset(root, "safe_unsafes", task="b")[0]
    assert safe["id"] == unsafe_q["id"] and safe["image_path"] == unsafe_q["image_path"]
    entries = raw[safe["id"]]["instr-resp"]
    assert (
        safe["question"] == entries[0]["safe_instruction"]
        and safe["reference_response"] == entries[0]["response"]
    )
    assert unsafe_q["question"] == entries[1]["unsafe_instruction"]
    unsafe = vlg.load_subset(root, "unsafes", task="c")[0]
    assert unsafe["question"] == raw[unsafe["id"]]["instr-resp"][0]["instruction"] and not unsafe["safe"]
    assert Path(safe["image_path"]) == (root / "test" / raw[safe["id"]]["image"]).resolve()


def test_reference_answers_file_is_used_when_given(tmp_path: Path) -> None:
    with_refs = vlguard_root(tmp_path / "r", references=True)
    docs = vlg.load_subset(with_refs, "safe_safes", task="t")
    refs = {r["id"]: r for r in json.loads((with_refs / "gpt4_safe_safes.json").read_text(encoding="utf-8"))}
    assert all(d["reference_source"] == "gpt4_safe_safes.json" for d in docs)
    assert all(d["reference_response"] == refs[d["id"]]["response"] for d in docs)
    data = json.loads((with_refs / "gpt4_safe_safes.json").read_text())
    data[10]["instruction"] = "something else"
    (with_refs / "gpt4_safe_safes.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="gpt4_safe_safes.json: no reference answer matching .*record #"):
        vlg.load_subset(with_refs, "safe_safes", task="t")


def test_missing_root_and_images_are_clear_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="VLGUARD_DATA_ROOT"):
        vlg.load_subset(None, "unsafes", task="t")
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copyfile(root / "test.json", bare / "test.json")
    with pytest.raises(
        DataError, match=r"record #0 \(id=syn_0000\): image 'bad_ads/.*' not found under any of"
    ):
        vlg.load_subset(bare, "safe_safes", task="t")
    partial = tmp_path / "partial"
    shutil.copytree(root, partial)
    victim = json.loads((root / "test.json").read_text())[5]
    (partial / "test" / victim["image"]).unlink()
    subset = "unsafes" if not victim["safe"] else "safe_safes"
    with pytest.raises(DataError, match=rf"record #5 \(id={victim['id']}\): image .* not found"):
        vlg.load_subset(partial, subset, task="t")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r[0].pop("safe"), r" record #0 \(id=syn_0000\): missing field 'safe'"),
        (lambda r: r[0]["instr-resp"].pop(0), r" record #0 .*exactly one 'safe_instruction' entry, found 0"),
        (
            lambda r: r[0]["instr-resp"][0].pop("response"),
            r" record #0 .*instr-resp\[safe_instruction\]: missing",
        ),
        (lambda r: r[1].update({"id": "syn_0000"}), r" record #1 .*duplicate id syn_0000"),
        (
            lambda r: r[5].pop("harmful_category"),
            r" record #5 \(id=syn_0005\): missing field 'harmful_category'",
        ),
        (lambda r: r.clear(), r": expected a non-empty JSON array"),
    ],
)
def test_wrong_schema_names_the_record(root: Path, tmp_path: Path, edit, message: str) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "test").symlink_to(root / "test")
    records = json.loads((root / "test.json").read_text())
    edit(records)
    (own / "test.json").write_text(json.dumps(records))
    with pytest.raises(DataError, match="test.json" + message):
        vlg.load_subset(own, "safe_safes", task="t")


def test_tasks_register_and_load_through_lmms_eval(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmms_eval.evaluator_utils import get_task_list
    from lmms_eval.tasks import TaskManager

    monkeypatch.setenv("VLGUARD_DATA_ROOT", str(root))
    manager = TaskManager(include_path=str(Path(vlg.__file__).parents[1]), include_defaults=False)
    tasks = {t.task_name: t.task for t in get_task_list(manager.load_task_or_group(["vlguard"]))}
    assert {n: len(t.test_docs()) for n, t in tasks.items()} == {
        "vlguard_safe_safes": 558,
        "vlguard_safe_unsafes": 558,
        "vlguard_unsafes": 442,
    }
    assert set(tasks["vlguard_safe_safes"]._metric_fn_list) == {
        "win_rate",
        "win_rate_swapped",
        "refusal_rate",
    }
    assert set(tasks["vlguard_unsafes"]._metric_fn_list) == {"ASR", "ASR_judge"}
    assert tasks["vlguard_unsafes"].config.generation_kwargs["max_new_tokens"] == 256
