"""The capability benchmarks run through lmms-eval's own task code: registration, prompts, scoring.

Their data lives on the hub, so the documents here are synthetic, shaped like the real
records; the functions under test are the ones lmms-eval resolves from each task's YAML.
The last test ties the leaderboard's column spec to what the tasks really report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from mis_eval.leaderboard.spec import load_spec
from mis_tasks.capability import CAPABILITY_TASKS, GROUP

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def tm() -> Any:
    from lmms_eval.tasks import TaskManager

    from mis_tasks.discovery import TASKS_DIR

    return TaskManager("ERROR", include_path=TASKS_DIR)


def img(color: str = "red") -> Image.Image:
    return Image.new("RGB", (8, 8), color)


def mmstar_doc(i: int, answer: str, l2: str = "image emotion") -> dict[str, Any]:
    q = f"Q{i}: what is the mood?\nOptions: A: happy, B: sad, C: calm, D: angry"
    return {
        "index": i,
        "question": q,
        "answer": answer,
        "category": "coarse perception",
        "l2_category": l2,
        "image": img(),
    }


def mmmu_doc(i: int, answer: str) -> dict[str, Any]:
    return {
        "id": f"validation_Art_{i}",
        "question": f"Which painting is <image 1> (item {i})?",
        "options": "['Mona Lisa', 'Guernica', 'The Scream', 'Sunflowers']",
        "answer": answer,
        "question_type": "multiple-choice",
        "image_1": img(),
        "image_2": None,
    }


def muir_doc(i: int, answer: str) -> dict[str, Any]:
    return {
        "idx": str(i),
        "task": "Image-Text Matching",
        "image_relation": "Similar",
        "image_type": "photo",
        "question": f"Which image shows a cat? ({i})",
        "options": ["first", "second", "both", "none"],
        "answer": answer,
        "image_list": [img("red"), img("blue")],
    }


def qbench_doc(i: int, answer: str) -> dict[str, Any]:
    return {
        "id": i,
        "question": f"Is image {i} blurry?",
        "option0": "Yes",
        "option1": "No",
        "option2": "N/A",
        "option3": "N/A",
        "correct_choice": answer,
        "question_concern": 0,
        "question_type": 0,
        "image": img(),
    }


def mmt_doc(i: int, answer: str) -> dict[str, Any]:
    return {
        "index": i,
        "question": f"What text is shown ({i})?",
        "A": "STOP",
        "B": "GO",
        "C": "",
        "answer": answer,
        "l2-category": "ocr",
        "split": "VAL",
        "image": img(),
    }


DOCS: dict[str, Callable[[int, str], dict[str, Any]]] = {
    "mmstar": mmstar_doc,
    "mmmu_val": mmmu_doc,
    "muirbench": muir_doc,
    "qbench_dev": qbench_doc,
    "mmt_val": mmt_doc,
}
IMAGES = {"mmstar": 1, "mmmu_val": 1, "muirbench": 2, "qbench_dev": 1, "mmt_val": 1}
# how each task lays out its second option in the prompt
OPTION_B = {
    "mmstar": "B: sad",
    "mmmu_val": "B. Guernica",
    "muirbench": "B. second",
    "qbench_dev": "B. No",
    "mmt_val": "B: GO",
}


def test_group_registers_the_five_upstream_tasks(tm: Any) -> None:
    assert GROUP in tm.all_groups
    assert tm._get_config(GROUP)["task"] == list(CAPABILITY_TASKS)
    for task in CAPABILITY_TASKS:
        entry = tm.task_index[task]
        assert entry["type"] == "task"
        assert "/lmms_eval/tasks/" in entry["yaml_path"], f"{task} should be lmms-eval's own task"


@pytest.mark.parametrize("task", list(CAPABILITY_TASKS))
def test_prompt_and_images(tm: Any, task: str) -> None:
    cfg = tm._get_config(task)
    kwargs = cfg["lmms_eval_specific_kwargs"]["default"]
    doc = DOCS[task](7, "B")
    text = cfg["doc_to_text"](doc, kwargs)
    assert "7" in text  # the question is in the prompt
    post = kwargs.get("post_prompt") or kwargs.get("multiple_choice_prompt")
    assert post.strip() in text
    assert OPTION_B[task] in text
    visuals = cfg["doc_to_visual"](doc)
    assert len(visuals) == IMAGES[task] and all(isinstance(v, Image.Image) for v in visuals)


def _filter(cfg: dict[str, Any], responses: list[str], docs: list[dict[str, Any]]) -> list[str]:
    """Apply the task's answer-extraction filter (MuirBench's flexible-extract) as lmms-eval does."""
    for f in cfg.get("filter_list") or []:
        for step in f["filter"]:
            fn = step["function"]
            args = {k: v for k, v in step.items() if k != "function"}
            return list(fn(**args).apply([[r] for r in responses], docs))
    return responses


@pytest.mark.parametrize("task", list(CAPABILITY_TASKS))
def test_scoring_matches_hand_count(tm: Any, task: str) -> None:
    """Four documents, three answered correctly -> 75% once scaled as the column spec says."""
    cfg = tm._get_config(task)
    docs = [DOCS[task](i, gold) for i, gold in enumerate("ABAB")]
    said = ["A", "B", "A", "A"] if task != "muirbench" else ["A. first", "B. second", "A. first", "A. first"]
    preds = _filter(cfg, said, docs)
    spec = load_spec()
    rule = spec.rule(task)
    assert rule.kind == "capability" and rule.lmms_metric
    metric, _, flt = rule.lmms_metric.partition(",")
    assert metric in [m["metric"] for m in cfg["metric_list"]]
    assert flt == ((cfg.get("filter_list") or [{"name": "none"}])[0]["name"])
    per_doc = [cfg["process_results"](d, [p]) for d, p in zip(docs, preds, strict=True)]
    agg = next(m["aggregation"] for m in cfg["metric_list"] if m["metric"] == metric)
    value = agg([r[metric] for r in per_doc])
    assert value * rule.scale == pytest.approx(75.0)


def test_mmmu_chat_messages_interleave_the_image(tm: Any) -> None:
    cfg = tm._get_config("mmmu_val")
    msgs = cfg["doc_to_messages"](mmmu_doc(1, "A"), cfg["lmms_eval_specific_kwargs"]["default"])
    kinds = [c["type"] for c in msgs[0]["content"]]
    assert kinds.count("image") == 1 and "text" in kinds
