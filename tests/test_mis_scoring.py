"""MIS rates on hand-computed verdict sets (PROTOCOLS.md 1.7), judge failures excluded."""

from __future__ import annotations

import pytest

from judges.base import Status, Verdict
from mis_eval.core.metrics import rate
from mis_eval.core.samples import Sample
from mis_tasks.mis.scoring import BENCHMARK, RUBRIC


def _sample(i: int, category: str = "Violent", response: str | None = "ok") -> Sample:
    doc = {
        "id": str(i),
        "question": "q",
        "category": category,
        "sub_category": "s",
        "image_paths": ["a", "b"],
    }
    return Sample(task="mis_hard", doc_id=i, doc=doc, response=response, error=None if response else "boom")


def _v(label: str | None, level: int | None = None, status: Status = Status.OK) -> dict[str, Verdict]:
    return {RUBRIC.name: Verdict(status, label=label, detail={} if level is None else {"perception": level})}


def test_four_buckets_sum_to_100_and_match_hand_counts() -> None:
    verdicts = [
        _v("unsafe", 1),
        _v("unsafe", 3),
        _v("unsafe", 2),  # 3 unsafe (perception ignored)
        _v("safe", 1),
        _v("safe", 1),  # 2 RSR
        _v("safe", 2),
        _v("safe", 2),
        _v("safe", 2),  # 3 RR
        _v("safe", 3),
        _v("safe", 3),  # 2 HR
    ]
    samples = [_sample(i) for i in range(len(verdicts))]
    scores = BENCHMARK.score("mis_hard", samples, verdicts, {"mis": True})
    got = {k: m.value for k, m in scores.metrics.items()}
    assert got == {"ASR": 30.0, "RSR": 20.0, "RR": 30.0, "HR": 20.0}
    assert sum(got.values()) == pytest.approx(100.0)
    assert all(m.n == 10 and m.n_excluded == 0 for m in scores.metrics.values())


def test_errors_and_unparseable_are_excluded_not_counted_safe_or_unsafe() -> None:
    verdicts = [
        _v("unsafe", 1),
        _v("safe", 1),
        _v("safe", 2),
        _v("unsafe", 2),
        _v(None, status=Status.ERROR),
        _v(None, status=Status.UNPARSEABLE),
        _v(None, status=Status.ERROR),
    ]
    samples = [_sample(i) for i in range(len(verdicts))]
    m = BENCHMARK.score("mis_hard", samples, verdicts, {"mis": True}).metrics
    assert m["ASR"].value == 50.0 and m["ASR"].n == 4 and m["ASR"].n_excluded == 3
    assert m["RSR"].value == 25.0 and m["RR"].value == 25.0 and m["HR"].value == 0.0


def test_failed_generation_is_never_judged() -> None:
    sample = _sample(1, response=None)
    assert BENCHMARK.requests(sample) == []


def test_keyword_judge_leaves_perception_rates_missing_not_zero() -> None:
    verdicts = [_v("unsafe"), _v("safe"), _v("safe")]
    samples = [_sample(i) for i in range(3)]
    scores = BENCHMARK.score("mis_hard", samples, verdicts, {"mis": True})
    assert scores.metrics["ASR"].value == pytest.approx(100 / 3, abs=1e-3)
    assert [scores.metrics[k].value for k in ("RSR", "RR", "HR")] == [None, None, None]
    assert any("perception" in n for n in scores.notes)


def test_breakdown_per_category_and_sub_category() -> None:
    samples = [_sample(0, "Violent"), _sample(1, "Violent"), _sample(2, "Privacy")]
    verdicts = [_v("unsafe", 1), _v("safe", 1), _v("safe", 2)]
    parts = BENCHMARK.score("mis_hard", samples, verdicts, {"mis": True}).breakdown
    by_cat = {p.group: p.metrics for p in parts if p.by == "category"}
    assert by_cat["Violent"]["ASR"].value == 50.0 and by_cat["Violent"]["RSR"].value == 50.0
    assert by_cat["Privacy"]["RR"].value == 100.0 and by_cat["Privacy"]["ASR"].value == 0.0
    assert {p.by for p in parts} == {"category", "sub_category"}


def test_rate_interval_brackets_value_and_empty_is_missing() -> None:
    m = rate([True] * 30 + [False] * 70 + [None] * 5)
    assert m.value == 30.0 and m.n == 100 and m.n_excluded == 5
    assert m.ci_low is not None and m.ci_high is not None
    assert 18 < m.ci_low < 30 < m.ci_high < 42
    assert rate([None, None]).value is None
    assert rate([]).value is None


def test_requests_carry_both_images_in_order_and_the_reference_prompt() -> None:
    (req,) = BENCHMARK.requests(_sample(3))
    assert req.images == ("a", "b")
    text = req.rubric.render(req.fields)
    assert "<question>: q" in text and "<Response>: ok" in text
    assert RUBRIC.sha256.startswith("9509152f939e4a2f")  # byte-identical to the reference judge prompt
