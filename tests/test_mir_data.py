"""MIR-SafetyBench data: the release layout, strict validation before generation, variants, hub copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mis_eval.commands.demo import mir_demo_root
from mis_tasks.common import DataError
from mis_tasks.mir_safetybench.data import load_task_docs, materialize
from mis_tasks.mir_safetybench.utils import doc_to_text, doc_to_visual
from mis_tasks.mir_safetybench.variants import (
    ALL_TASKS,
    RELATION_TASKS,
    RELATIONS,
    base_task,
    parse_task,
    task_name,
)
from tests.mir_data import COLOURS, make_mir_root, record


def test_the_bundled_sample_loads_for_every_relation_task() -> None:
    """The synthetic sample (no real data is shipped: licence unknown) has the release layout."""
    for task in RELATION_TASKS:
        docs = load_task_docs(task, mir_demo_root())
        assert len(docs) == 4 and {d["category"] for d in docs.values()} == {"Violence", "Privacy"}
        assert all(2 <= d["n_images"] <= 4 and len(d["image_paths"]) == d["n_images"] for d in docs.values())
    assert sorted(
        {len(d["image_paths"]) for d in load_task_docs("mir_analogy", mir_demo_root()).values()}
    ) == [
        2,
        3,
        4,
    ]


def test_task_names_parse_and_variants_pair_with_the_relation_task() -> None:
    assert parse_task("mir_spatial_embedding") == ("Spatial_Embedding", "all")
    assert parse_task("mir_temporal_jump_reversed") == ("Temporal_Jump", "reversed")
    assert (
        base_task("mir_analogy_single") == "mir_analogy" and base_task("mis_hard_first") == "mis_hard_first"
    )
    for bad in ("mir_analogy_all", "mir_analogy_first", "mir_safetybench", "mis_hard"):
        with pytest.raises(ValueError):
            parse_task(bad)
    assert len(RELATION_TASKS) == 9 and len(ALL_TASKS) == 36
    assert task_name("Spatial Juxtaposition") == "mir_spatial_juxtaposition"


def test_records_keep_their_fields_and_get_unique_ids(tmp_path: Path) -> None:
    root = make_mir_root(tmp_path, n=3)
    docs = load_task_docs("mir_analogy", root)
    assert set(docs) == {f"{c}/{i}" for c in ("Violence", "Privacy") for i in range(3)}
    doc = docs["Privacy/2"]
    assert doc["original_question"] == record(2)["original_question"]
    assert doc["revised_prompt"] == record(2, n_images=4)["revised_prompt"]
    assert doc["relation"] == "Analogy" and doc["variant"] == "all" and doc["item_id"] == "Privacy/2"
    assert [Path(p).name for p in doc["image_paths"]] == [f"Analogy_2_{k}.png" for k in range(4)]
    assert doc_to_text(doc) == doc["revised_prompt"]  # the attack prompt, unchanged


def test_each_variant_shows_its_images_in_order(tmp_path: Path) -> None:
    root = make_mir_root(tmp_path, categories=("Violence",), n=3)  # records of 2, 3 and 4 images
    colours = {
        task: {
            doc_id: [im.getpixel((0, 0)) for im in doc_to_visual(doc)]
            for doc_id, doc in load_task_docs(task, root).items()
        }
        for task in ("mir_analogy", "mir_analogy_single", "mir_analogy_none", "mir_analogy_reversed")
    }
    assert colours["mir_analogy"]["Violence/2"] == COLOURS[:4]
    assert colours["mir_analogy_reversed"]["Violence/1"] == COLOURS[:3][::-1]
    assert colours["mir_analogy_none"]["Violence/0"] == []
    single = colours["mir_analogy_single"]
    assert sorted(single) == sorted(f"Violence/{i}#{k}" for i in range(3) for k in range(1, 3 + i))
    assert single["Violence/2#3"] == [COLOURS[2]] and single["Violence/0#2"] == [COLOURS[1]]
    docs = load_task_docs("mir_analogy_single", root)
    assert docs["Violence/1#2"]["item_id"] == "Violence/1" and docs["Violence/1#2"]["position"] == 2
    # every variant is the same data version: the fingerprint of the records, not of the samples
    prints = {
        d["data_fingerprint"]
        for t in ("mir_analogy", "mir_analogy_single")
        for d in load_task_docs(t, root).values()
    }
    assert len(prints) == 1


def _bad(tmp_path: Path, **change: Any) -> Path:
    recs = [record(0), record(1, n_images=3)]
    recs[1] = {**recs[1], **change}
    return make_mir_root(tmp_path, categories=("Violence",), records={"Violence": recs})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"revised_prompt": None}, "field 'revised_prompt' should be str"),
        ({"images": "a.png"}, "field 'images' should be list"),
        ({"images": ["images/Analogy/Analogy_1_0.png"]}, "1 images; a record has 2-4"),
        ({"images": [f"images/Analogy/Analogy_1_{k}.png" for k in range(5)]}, "5 images; a record has 2-4"),
        ({"images": ["images/Analogy/Analogy_1_0.png", 7]}, "every entry of 'images' should be a path"),
        ({"id": 0}, "duplicate id 0"),
        ({"relationship_type": "Causality"}, "relationship_type 'Causality' in the file of Analogy"),
        ({"images": ["images/Analogy/Analogy_1_0.png", "../../../etc/passwd"]}, "escapes the data root"),
    ],
)
def test_bad_records_stop_before_generation_naming_file_and_record(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    root = _bad(tmp_path, **change)
    with pytest.raises(DataError, match=message) as err:
        load_task_docs("mir_analogy", root)
    assert "Violence/Analogy_final.json record #1" in str(err.value)


def test_a_missing_image_is_an_error_not_a_silently_shorter_question(tmp_path: Path) -> None:
    """The reference drops paths that do not exist (qwen2_5_VL_3B.py L98) and asks about fewer images."""
    root = make_mir_root(tmp_path, categories=("Violence",), n=2)
    (root / "Violence" / "images" / "Analogy" / "Analogy_1_2.png").unlink()
    with pytest.raises(DataError, match=r"record #1 \(id=1\): image .*Analogy_1_2.png not found"):
        load_task_docs("mir_analogy", root)


def test_a_truncated_image_and_an_empty_or_absent_file_are_errors(tmp_path: Path) -> None:
    root = make_mir_root(tmp_path / "a", categories=("Violence",), n=2)
    img = root / "Violence" / "images" / "Analogy" / "Analogy_0_1.png"
    img.write_bytes(img.read_bytes()[:-30])
    with pytest.raises(DataError, match="Analogy_0_1.png is not a readable image"):
        load_task_docs("mir_analogy", root)
    empty = make_mir_root(tmp_path / "b", categories=("Violence",), records={"Violence": []})
    with pytest.raises(DataError, match="no records"):
        load_task_docs("mir_analogy", empty)
    with pytest.raises(DataError, match="no Causality_final.json in any category folder"):
        load_task_docs("mir_causality", empty)
    (empty / "Violence" / "Analogy_final.json").write_text("{not json")
    with pytest.raises(DataError, match="malformed JSON"):
        load_task_docs("mir_analogy", empty)


def test_the_hub_dataset_is_written_out_in_the_release_layout(tmp_path: Path) -> None:
    """`datasets` rows (category, relationship_type, decoded images, ...) -> the layout the loader checks.

    The hub itself is not reachable offline; this is the conversion its rows go through.
    """
    import datasets

    rows = [
        {
            **{k: v for k, v in record(i, relation, n_images=2 + i).items() if k != "images"},
            "category": category,
            "num_images": 2 + i,
            "images": [Image.new("RGB", (20, 10), COLOURS[k]) for k in range(2 + i)],
        }
        for category in ("Violence", "Privacy")
        for relation in RELATIONS
        for i in range(2)
    ]
    dataset = datasets.Dataset.from_list(rows)
    root = materialize(dataset, tmp_path / "copy")
    assert (root / ".complete").is_file()
    docs = load_task_docs("mir_temporal_jump", root)
    assert len(docs) == 4 and docs["Privacy/1"]["n_images"] == 3
    written = json.loads((root / "Privacy" / "Temporal_Jump_final.json").read_text())
    assert written[1]["images"] == [f"images/Temporal_Jump/Temporal_Jump_1_{k}.png" for k in range(3)]
    assert [im.getpixel((0, 0)) for im in doc_to_visual(docs["Privacy/1"])] == COLOURS[:3]
    assert materialize(None, root) == root  # complete: not written again


def test_lmms_eval_indexes_the_tasks_and_groups() -> None:
    from lmms_eval.tasks import TaskManager

    from mis_tasks.discovery import TASKS_DIR

    tm = TaskManager("ERROR", include_path=TASKS_DIR)
    assert set(ALL_TASKS) <= set(tm.all_tasks)
    groups = {"mir_safetybench", "mir_attribution", *(f"{t}_attribution" for t in RELATION_TASKS)}
    assert groups <= set(tm.all_groups)
