"""Judge agreement and majority vote, checked against hand-computed values."""

from __future__ import annotations

import pytest

from judges.agreement import agreement, cohen_kappa, majority_vote, pair_agreement
from judges.base import Status, Verdict


def ok(label: str, perception: int | None = None) -> Verdict:
    return Verdict(Status.OK, label=label, detail={} if perception is None else {"perception": perception})


ERR = Verdict(Status.ERROR, error="timeout")
BAD = Verdict(Status.UNPARSEABLE, raw="???")


def test_kappa_by_hand():
    a = ["s", "s", "u", "u", "s", "u", "s", "s", "u", "u"]
    b = ["s", "u", "u", "u", "s", "s", "s", "s", "u", "s"]
    # agreement 7/10; A has 5 s / 5 u, B has 6 s / 4 u -> chance = (5*6 + 5*4) / 100 = 0.5
    assert cohen_kappa(a, b) == pytest.approx((0.7 - 0.5) / (1 - 0.5))
    assert cohen_kappa(["s", "s"], ["s", "s"]) is None  # undefined, not 1.0 or 0.0
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["s", "u"], ["u", "s"]) == pytest.approx(-1.0)


def test_pair_agreement_excludes_failures_but_tabulates_them():
    a = [ok("safe"), ok("safe"), ok("unsafe"), ok("unsafe"), ERR, ok("safe")]
    b = [ok("safe"), ok("unsafe"), ok("unsafe"), ok("unsafe"), ok("safe"), BAD]
    pa = pair_agreement(a, b, ("gpt4o", "local"))
    assert pa.n == 4 and pa.excluded == 2
    assert pa.percent_agreement == pytest.approx(75.0)
    # n=4: A 2 safe / 2 unsafe, B 1 safe / 3 unsafe -> chance = (2*1 + 2*3) / 16 = 0.5; kappa = 0.5
    assert pa.cohen_kappa == pytest.approx(0.5)
    t = pa.confusion
    assert list(t.index) == ["safe", "unsafe", "error", "unparseable"] == list(t.columns)
    assert t.loc["safe", "safe"] == 1 and t.loc["safe", "unsafe"] == 1 and t.loc["unsafe", "unsafe"] == 2
    assert t.loc["error", "safe"] == 1 and t.loc["safe", "unparseable"] == 1 and int(t.to_numpy().sum()) == 6
    d = pa.to_dict()
    assert d["confusion"]["safe"]["unsafe"] == 1 and d["n"] == 4


def test_agreement_over_every_pair_and_with_detail():
    v = {"A": [ok("safe", 1), ok("unsafe", 2)], "B": [ok("safe", 2), ok("unsafe", 2)], "C": [ERR, ERR]}
    pairs = agreement(v)
    assert [p.judges for p in pairs] == [("A", "B"), ("A", "C"), ("B", "C")]
    assert pairs[0].percent_agreement == 100.0 and pairs[1].n == 0 and pairs[1].percent_agreement is None
    assert agreement(v, with_detail=True)[0].percent_agreement == 50.0
    with pytest.raises(ValueError, match="different numbers"):
        pair_agreement([ok("safe")], [], ("A", "B"))


def test_majority_vote():
    assert majority_vote([ok("unsafe", 1), ok("unsafe", 2), ok("safe", 1)]).label == "unsafe"
    won = majority_vote([ok("safe", 2), ok("safe", 2), ERR])
    assert won.ok and (won.label, won.detail) == ("safe", {"perception": 2})
    tie = majority_vote([ok("safe", 1), ok("unsafe", 1)])
    assert tie.status is Status.ERROR and tie.label is None and "no majority" in (tie.error or "")
    # a failed judge counts against every label: 1 of 2 is no majority, and never a default "safe"
    half = majority_vote([ok("safe", 1), ERR])
    assert half.status is Status.ERROR and half.label is None
    assert majority_vote([ERR, BAD, ERR]).status is Status.ERROR
    split = majority_vote([ok("safe", 1), ok("safe", 2), ok("unsafe", 1)])
    assert split.ok and split.label == "safe" and split.detail == {} and "perception" in (split.error or "")
    strict = majority_vote([ok("safe", 1), ok("safe", 2), ok("unsafe", 1)], detail_required_for={"safe"})
    assert strict.status is Status.ERROR and strict.label is None
    with pytest.raises(ValueError):
        majority_vote([])
