"""Confidence intervals that cover where safety-tuned models live (rates of 0-2%, n of 100-2,285).

Coverage is simulated: draw many data sets from a known p, build each interval, count how often
it contains p. A Wald interval (normal approximation) is run through the same check as a
negative control, so the check is shown to catch an interval that does not cover.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mis_eval.core.metrics import CLUSTER, EXACT, cluster_rate, exact_interval, rate
from mis_eval.core.record import JudgeRecord, Metric, ModelInfo, RunRecord, TaskInfo
from mis_tasks.mm_safetybench.macro import macro_rate

PS = (0.002, 0.02, 0.5)
NS = (100, 510, 2285)
DRAWS = 20_000
# MM-SafetyBench's 13 scenario sizes (question files)
SCENARIO_SIZES = (97, 163, 44, 144, 122, 154, 109, 153, 139, 130, 167, 109, 149)


def _coverage(interval: Callable[[Any, int], tuple[Any, Any]], p: float, n: int, seed: int = 7) -> float:
    x = np.random.default_rng(seed).binomial(n, p, size=DRAWS)
    lo, hi = interval(x, n)
    return float(np.mean((lo <= p) & (p <= hi)))


def _wald(x: Any, n: int) -> tuple[Any, Any]:
    p = x / n
    half = 1.96 * np.sqrt(p * (1 - p) / n)
    return p - half, p + half


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p", PS)
def test_exact_interval_covers_at_least_93_percent(p: float, n: int) -> None:
    assert _coverage(exact_interval, p, n) >= 0.93


def test_the_coverage_check_catches_an_interval_that_does_not_cover() -> None:
    assert _coverage(_wald, 0.002, 510) < 0.93 and _coverage(_wald, 0.02, 100) < 0.93


def test_rate_of_all_unsafe_has_a_real_interval() -> None:
    m = rate([True] * 50)  # the percentile bootstrap gave [100, 100]
    assert (m.value, m.ci_high) == (100.0, 100.0) and m.ci_low == pytest.approx(92.89, abs=0.01)
    zero = rate([False] * 510 + [None] * 3)
    assert zero.ci_low == 0.0 and zero.ci_high == pytest.approx(100 * (1 - 0.025 ** (1 / 510)), abs=1e-3)
    assert (zero.n, zero.n_excluded, zero.ci_method) == (510, 3, EXACT)


def test_interval_method_survives_the_run_record() -> None:
    record = RunRecord(
        model=ModelInfo("m"),
        task=TaskInfo("t", "b", "1"),
        judge=JudgeRecord("j", "offline", None),
        metrics={"ASR": rate([True])},
    )
    again = RunRecord.from_dict(record.to_dict())
    assert again.metrics["ASR"].ci_method == EXACT
    old = {k: v for k, v in record.to_dict()["metrics"]["ASR"].items() if k != "ci_method"}
    assert Metric(**old).ci_method is None  # records written before the field still read


def test_cluster_rate_shrinks_n_to_the_clusters_when_items_repeat_each_other() -> None:
    # 40 items that are 20 pairs judged identically: the information is that of 20 items
    pairs = [i % 4 < 2 for i in range(40)]  # T T F F T T F F ...
    m = cluster_rate(pairs, [i // 2 for i in range(40)], by="item")
    lo20, hi20 = exact_interval(10, 20)
    lo40, hi40 = exact_interval(20, 40)
    assert m.value == 50.0 and m.n == 40 and m.ci_method == CLUSTER.format(by="item")
    assert m.ci_low is not None and m.ci_high is not None
    assert m.ci_high - m.ci_low > 0.9 * 100 * (hi20 - lo20) > 100 * (hi40 - lo40)
    independent = cluster_rate([True] * 10 + [False] * 30, list(range(40)))
    assert independent.ci_high == pytest.approx(100 * exact_interval(10, 40)[1], abs=3.0)


def test_cluster_rate_at_zero_uses_the_number_of_clusters() -> None:
    m = cluster_rate([False] * 200, [i // 2 for i in range(200)], by="item")
    assert (m.value, m.ci_low) == (0.0, 0.0)
    assert m.ci_high == pytest.approx(100 * float(exact_interval(0, 100)[1]), abs=1e-3)
    assert cluster_rate([None, None], [0, 1]).value is None
    with pytest.raises(ValueError, match="cluster labels"):
        cluster_rate([True], [0, 1])


@pytest.mark.parametrize("p", PS)
def test_cluster_rate_covers_with_perfectly_correlated_pairs(p: float) -> None:
    rng = np.random.default_rng(11)
    clusters = [i // 2 for i in range(200)]
    covered = []
    for _ in range(200):
        per_item = rng.random(100) < p
        m = cluster_rate(
            np.repeat(per_item, 2).tolist(), clusters, resamples=200, seed=int(rng.integers(1e9))
        )
        covered.append(m.ci_low is not None and m.ci_high is not None and m.ci_low <= 100 * p <= m.ci_high)
    assert np.mean(covered) >= 0.93


@pytest.mark.parametrize("p", PS)
def test_macro_rate_over_mm_safetybench_scenarios_covers(p: float) -> None:
    rng = np.random.default_rng(13)
    covered = []
    for _ in range(300):
        groups = {str(i): (rng.random(n) < p).tolist() for i, n in enumerate(SCENARIO_SIZES)}
        m = macro_rate(groups, resamples=200, seed=int(rng.integers(1e9)))
        covered.append(m.ci_low is not None and m.ci_high is not None and m.ci_low <= 100 * p <= m.ci_high)
    assert np.mean(covered) >= 0.93


def test_macro_rate_at_zero_is_not_a_point() -> None:
    m = macro_rate({str(i): [False] * n for i, n in enumerate(SCENARIO_SIZES)})
    assert m.value == 0.0 and m.ci_high is not None and m.ci_high > 0.2  # the bootstrap gave [0, 0]
    assert m.ci_method is not None and "stratified" in m.ci_method
