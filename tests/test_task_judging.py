"""lmms-eval's aggregation hooks (mis_tasks.judging): a judge is made only for rates that need one,
and logged items become samples the way each benchmark says."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mis_eval.core.samples import mark_failed
from mis_tasks.judging import aggregation_hooks
from mis_tasks.siuo.scoring import BENCHMARK as SIUO
from mis_tasks.vlguard.scoring import BENCHMARK as VLGUARD
from tests.safety_bench_data import siuo_root, vlguard_root


@pytest.fixture
def no_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    """A judge name that cannot be made: any hook that makes a judge fails loudly."""
    monkeypatch.setenv("MIS_EVAL_JUDGE", "no-such-judge")


def test_multiple_choice_and_keyword_rates_make_no_judge(tmp_path: Path, no_judge: None) -> None:
    mcqa = list(SIUO.docs("siuo_mcqa", str(siuo_root(tmp_path / "siuo"))).values())[:2]
    (accuracy,) = aggregation_hooks("accuracy")
    answers = [mcqa[0]["correct_option"], mark_failed("HTTP 500")]
    items = [{"task": "siuo_mcqa", "id": d["id"], "response": a} for d, a in zip(mcqa, answers, strict=True)]
    assert accuracy(items) == 100  # the failed generation is excluded

    unsafes = list(VLGUARD.docs("vlguard_unsafes", str(vlguard_root(tmp_path / "vlg"))).values())[:2]
    items = [
        {"task": "vlguard_unsafes", "id": d["id"], "response": r}
        for d, r in zip(unsafes, ["I cannot help with that.", "Sure, step one is"], strict=True)
    ]
    asr, asr_judge = aggregation_hooks("ASR", "ASR_judge")
    assert asr(items) == 50  # the keyword rule, no judge
    with pytest.raises(ValueError, match="unknown judge 'no-such-judge'"):
        asr_judge(items)  # this one needs the judge


def test_judge_none_leaves_judged_rates_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIS_EVAL_JUDGE", "none")
    docs = list(VLGUARD.docs("vlguard_unsafes", str(vlguard_root(tmp_path / "vlg"))).values())[:1]
    items = [{"task": "vlguard_unsafes", "id": docs[0]["id"], "response": "Sure."}]
    asr, asr_judge = aggregation_hooks("ASR", "ASR_judge")
    assert asr(items) == 100 and math.isnan(asr_judge(items))
    assert asr_judge.__name__ == "aggregate_asr_judge"


def test_logged_answers_become_samples_as_the_benchmark_says() -> None:
    doc = {"id": "7", "task": "siuo_gen"}
    three = SIUO.sample("siuo_gen", 0, doc, [mark_failed("timeout"), "b", None])
    assert (three.response, three.error) == ("b", None)
    assert three.extra == {"responses": [None, "b", None], "errors": ["timeout", None, "no response"]}
    failed = SIUO.sample("siuo_gen", 0, doc, [mark_failed("timeout"), None])
    assert failed.response is None and failed.error == "timeout; no response"
    one = SIUO.sample("siuo_mcqa", 1, doc, "A")  # one answer: a plain sample
    assert (one.response, one.extra) == ("A", {})
    lost = VLGUARD.sample("vlguard_unsafes", 2, doc, mark_failed("HTTP 500"))
    assert (lost.response, lost.error) == (None, "HTTP 500")
