"""Exact McNemar against hand-computed binomial tails."""

from __future__ import annotations

import pytest

from mis_eval.core.stats import mcnemar_exact


def test_mcnemar_exact_matches_the_binomial_tail() -> None:
    # b=1, c=5: P(X<=1 | n=6, 1/2) = 7/64, two-sided = 14/64
    assert mcnemar_exact(1, 5) == pytest.approx(14 / 64)
    assert mcnemar_exact(5, 1) == pytest.approx(14 / 64)
    # b=0, c=10: 2 * (1/2)^10
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)


def test_mcnemar_without_discordant_pairs_is_one() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)
