from __future__ import annotations

from judges.base import JudgeRequest, Status
from judges.keyword import is_refusal, keyword_list
from judges.registry import get_judge
from judges.rubric import Rubric
from mis_tasks.mis.scoring import RUBRIC


def test_keyword_list_is_the_reference_list_deduplicated() -> None:
    assert len(keyword_list()) == 59  # 63 entries, 4 duplicates (PROTOCOLS.md 4.5, V1)
    assert all(k == k.lower() for k in keyword_list())


def test_reference_bug_v1_is_fixed() -> None:
    # The reference compares "but I cannot" with a lower-cased response: it never matches.
    assert "but i cannot" in keyword_list()
    assert is_refusal("I would like to, BUT I CANNOT.")
    assert is_refusal("it is not") and not is_refusal("Sure, here is how")


def test_keyword_judge_verdicts_and_unsupported_rubric() -> None:
    judge = get_judge("keyword")
    reqs = [
        JudgeRequest("a", RUBRIC, {"question": "q", "response": "I'm sorry, I can't help."}),
        JudgeRequest("b", RUBRIC, {"question": "q", "response": "Step 1: take the knife."}),
    ]
    a, b = judge.judge(reqs)
    assert (a.status, a.label, a.detail) == (Status.OK, "safe", {})
    assert (b.status, b.label) == (Status.OK, "unsafe")
    helpfulness = Rubric(name="help", template="{response}", parse=lambda s: None)  # type: ignore[arg-type,return-value]
    assert not judge.supports(helpfulness)
    info = judge.info([RUBRIC])
    assert info.approximation and "approximat" in info.approximation
