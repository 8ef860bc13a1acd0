"""MM-SafetyBench data: the bundled upstream question files, generated images, counts and validation."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from mis_tasks.common import DataError
from mis_tasks.mm_safetybench import data as mmsb
from mis_tasks.mm_safetybench.typography import FONT_SIZE, WIDTH, font_path, render_typo, wrap
from tests.safety_bench_data import MMSB_QUESTIONS, mmsb_root, write_image
from tests.upstream_files import FILES, sha256_file, upstream

COUNTS = {  # PROTOCOLS.md 2.3: questions and tiny subset per scenario
    "01-Illegal_Activitiy": (97, 10),
    "02-HateSpeech": (163, 16),
    "03-Malware_Generation": (44, 5),
    "04-Physical_Harm": (144, 14),
    "05-EconomicHarm": (122, 12),
    "06-Fraud": (154, 15),
    "07-Sex": (109, 11),
    "08-Political_Lobbying": (153, 15),
    "09-Privacy_Violence": (139, 14),
    "10-Legal_Opinion": (130, 13),
    "11-Financial_Advice": (167, 17),
    "12-Health_Consultation": (109, 11),
    "13-Gov_Decision": (149, 15),
}


@pytest.fixture(scope="module")
def sd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mmsb_root(tmp_path_factory.mktemp("mmsb"), ("SD",))


def test_bundled_question_files_are_byte_exact_copies() -> None:
    bundled = mmsb.bundled_questions()
    assert [Path(name).stem for name in MMSB_QUESTIONS] == list(mmsb.SCENARIOS)
    for name in [*MMSB_QUESTIONS, "mm_safetybench/TinyVersion_ID_List.json"]:
        assert sha256_file(bundled / Path(name).name) == FILES[name].sha256, name


def test_counts_per_scenario_match_the_protocol(sd_root: Path) -> None:
    docs = mmsb.load_variant(sd_root, "SD", task="mm_safetybench_sd")
    assert len(docs) == 1680 and len({d["id"] for d in docs}) == 1680
    assert Counter(d["scenario"] for d in docs) == {s: n for s, (n, _) in COUNTS.items()}
    tiny = mmsb.load_variant(sd_root, "SD", task="mm_safetybench_tiny_sd", subset="tiny")
    assert len(tiny) == 168 and Counter(d["scenario"] for d in tiny) == {s: t for s, (_, t) in COUNTS.items()}


def test_ids_are_the_file_keys_not_list_positions(sd_root: Path) -> None:
    """05 and 08 have gaps in their ids; the key names the image file."""
    docs = mmsb.load_variant(sd_root, "SD", task="mm_safetybench_sd")
    econ = [d for d in docs if d["scenario"] == "05-EconomicHarm"]
    keys = json.loads(upstream("mm_safetybench/processed_questions/05-EconomicHarm.json").read_text())
    assert [d["question_id"] for d in econ] == sorted(keys, key=int) and econ[-1]["question_id"] == "132"
    assert all(Path(d["image_path"]).name == f"{d['question_id']}.jpg" for d in econ)


def test_each_variant_sends_its_own_question_field(sd_root: Path) -> None:
    raw = json.loads(upstream("mm_safetybench/processed_questions/01-Illegal_Activitiy.json").read_text())[
        "0"
    ]
    by_variant = {v: mmsb.load_variant(sd_root, v, task=f"t_{v}")[0] for v in ("SD", "SD_TYPO", "TYPO")}
    assert by_variant["SD"]["question"] == raw["Rephrased Question(SD)"]
    assert by_variant["SD_TYPO"]["question"] == by_variant["TYPO"]["question"] == raw["Rephrased Question"]
    assert by_variant["SD"]["question"] != by_variant["TYPO"]["question"]
    assert by_variant["TYPO"]["key_phrase"] == raw["Key Phrase"]


def test_typo_images_are_rendered_when_missing_and_say_so() -> None:
    docs = mmsb.load_variant(None, "TYPO", task="mm_safetybench_typo")
    assert len(docs) == 1680 and {d["image_origin"] for d in docs} == {"rendered"}
    assert "DejaVuSans.ttf" in docs[0]["typo_renderer"] and font_path().is_file()
    one, two = render_typo(docs[0]["key_phrase"]), render_typo(docs[0]["key_phrase"])
    assert one.tobytes() == two.tobytes()  # deterministic
    assert one.width == WIDTH and one.height == FONT_SIZE * (len(wrap(docs[0]["key_phrase"])) + 1)
    assert one.convert("L").getextrema() == (0, 255)  # black text on white


def test_long_key_phrases_wrap_like_upstream() -> None:
    lines = wrap("a very long key phrase that will surely need to wrap across several lines of text here")
    assert len(lines) > 2 and all(line.startswith(" ") for line in lines[1:])  # upstream's "\n " + word
    assert " ".join(line.strip() for line in lines) == (
        "a very long key phrase that will surely need to wrap across several lines of text here"
    )


def test_supplied_images_win_and_sd_typo_is_composed_from_sd(tmp_path: Path, sd_root: Path) -> None:
    from mis_tasks.mm_safetybench.utils import doc_to_visual

    root = tmp_path / "root"
    write_image(root / "imgs" / "01-Illegal_Activitiy" / "TYPO" / "0.jpg", 3, "JPEG")
    write_image(root / "imgs" / "01-Illegal_Activitiy" / "SD" / "1.jpg", 4, "JPEG")
    docs = mmsb.load_variant(root, "TYPO", task="t")
    typo = {d["question_id"]: d for d in docs if d["scenario"].startswith("01")}
    assert typo["0"]["image_origin"] == "file" and typo["0"]["typo_renderer"] == ""
    assert typo["1"]["image_origin"] == "rendered"
    with pytest.raises(DataError, match=r"Illegal_Activitiy.json record '0' \(SD_TYPO\): no SD_TYPO image"):
        mmsb.load_variant(root, "SD_TYPO", task="t")
    # once every SD image exists, missing SD_TYPO images are composed: SD on top, typography below
    doc = mmsb.load_variant(sd_root, "SD_TYPO", task="t")[0]
    assert doc["image_origin"] == "composed" and doc["sd_path"].endswith("SD/0.jpg")
    (image,) = doc_to_visual(doc)
    sd = Image.open(doc["sd_path"]).convert("RGB")
    assert image.width == WIDTH and image.crop((0, 0, sd.width, sd.height)).tobytes() == sd.tobytes()
    assert image.height == sd.height + render_typo(doc["key_phrase"]).height


def test_sd_images_must_be_supplied(tmp_path: Path, sd_root: Path) -> None:
    with pytest.raises(DataError, match="SD images must be supplied.*MMSB_DATA_ROOT"):
        mmsb.load_variant(None, "SD", task="t")
    root = tmp_path / "partial"
    shutil.copytree(sd_root / "imgs" / "01-Illegal_Activitiy", root / "imgs" / "01-Illegal_Activitiy")
    with pytest.raises(DataError, match=r"02-HateSpeech.json record '0' \(SD\).*and 1582 more records"):
        mmsb.load_variant(root, "SD", task="t")


def test_bad_image_names_the_record(tmp_path: Path) -> None:
    root = mmsb_root(tmp_path / "r", ("SD",))
    (root / "imgs" / "03-Malware_Generation" / "SD" / "7.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"Malware_Generation.json record '7' \(SD\): image .* not a"):
        mmsb.load_variant(root, "SD", task="t")


def _own_questions(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(mmsb.bundled_questions(), root / "processed_questions")
    return root


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["4"].pop("Key Phrase"), r"record '4': missing field 'Key Phrase'"),
        (lambda d: d["4"].update({"Phrase Type": 3}), r"record '4': field 'Phrase Type' should be str"),
        (lambda d: d.update({"x1": d.pop("4")}), r"record 'x1': question id must be a non-negative integer"),
    ],
)
def test_wrong_schema_names_file_and_record(tmp_path: Path, edit, message: str) -> None:
    root = _own_questions(tmp_path)
    path = root / "processed_questions" / "06-Fraud.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="06-Fraud.json " + message):
        mmsb.load_variant(root, "TYPO", task="t")


def test_duplicate_ids_and_missing_files_are_errors(tmp_path: Path) -> None:
    root = _own_questions(tmp_path)
    path = root / "processed_questions" / "07-Sex.json"
    path.write_text('{"0": {}, "0": {}}')
    with pytest.raises(DataError, match="07-Sex.json: duplicate key '0'"):
        mmsb.load_variant(root, "TYPO", task="t")
    path.unlink()
    with pytest.raises(DataError, match="07-Sex.json: file not found"):
        mmsb.load_variant(root, "TYPO", task="t")


def test_own_question_files_replace_the_bundled_ones(tmp_path: Path) -> None:
    root = _own_questions(tmp_path)
    path = root / "processed_questions" / "03-Malware_Generation.json"
    data = json.loads(path.read_text())
    data["0"]["Rephrased Question"] = "changed"
    path.write_text(json.dumps(data))
    docs = {d["id"]: d for d in mmsb.load_variant(root, "TYPO", task="t")}
    assert docs["03-Malware_Generation/0"]["question"] == "changed"
    bundled = mmsb.load_variant(None, "TYPO", task="t")[0]["data_fingerprint"]
    assert docs["03-Malware_Generation/0"]["data_fingerprint"] != bundled


def test_tasks_register_and_load_through_lmms_eval(sd_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmms_eval.evaluator_utils import get_task_list
    from lmms_eval.tasks import TaskManager

    monkeypatch.setenv("MMSB_DATA_ROOT", str(sd_root))
    manager = TaskManager(include_path=str(Path(mmsb.__file__).parents[1]), include_defaults=False)
    assert {
        "mm_safetybench",
        "mm_safetybench_sd",
        "mm_safetybench_sd_typo",
        "mm_safetybench_typo",
        "mm_safetybench_tiny",
    } <= set(manager.all_tasks)
    loaded = {t.task_name: t.task for t in get_task_list(manager.load_task_or_group(["mm_safetybench"]))}
    assert set(loaded) == {"mm_safetybench_sd", "mm_safetybench_sd_typo", "mm_safetybench_typo"}
    for name, task in loaded.items():
        docs = task.test_docs()
        assert len(docs) == 1680 and docs[0]["task"] == name
        assert task.doc_to_text(docs[0]) == docs[0]["question"]
        (image,) = task.config.doc_to_visual(docs[0])
        assert image.mode == "RGB" and image.width == (8 if name == "mm_safetybench_sd" else WIDTH)
