"""Unweighted (macro) mean of per-group rates, with a stratified-bootstrap, exact-on-effective-n CI.

MM-SafetyBench reports ASR per scenario; its overall number here is the plain mean of the 13
scenario rates, so a 44-item scenario weighs as much as a 167-item one. The variance of that
mean comes from resampling within each scenario (binomial counts, which is the bootstrap of a
0/1 mean); the interval is then the exact one at the effective sample size it implies
(mis_eval.core.metrics.effective_interval), with Kish's effective n of the equal-weight design as the
ceiling and as the size used when every scenario is at 0% (or 100%), where the bootstrap has
zero spread. A percentile bootstrap would give [0, 0] there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mis_eval.core.metrics import BOOTSTRAP_RESAMPLES, SEED, effective_interval, percent_metric
from mis_eval.core.record import Metric

STRATIFIED = "stratified bootstrap by {by}, exact on the effective n (Korn-Graubard)"


def macro_rate(
    groups: Mapping[str, Sequence[bool | None]],
    *,
    by: str = "scenario",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = SEED,
) -> Metric:
    """Mean over groups of each group's percentage of True (None entries excluded).

    A group with no usable entry has no rate and is left out of the mean; `n` counts the
    usable entries of all groups, `n_excluded` the None entries.
    """
    valid = {g: np.array([h for h in hits if h is not None], dtype=float) for g, hits in groups.items()}
    used = [v for v in valid.values() if len(v)]
    excluded = sum(len(hits) for hits in groups.values()) - sum(len(v) for v in used)
    if not used:
        return Metric(value=None, n=0, n_excluded=excluded)
    sizes = np.array([len(v) for v in used], dtype=float)
    means = np.array([v.mean() for v in used])
    value = float(means.mean())
    rng = np.random.default_rng(seed)
    boots = rng.binomial(sizes.astype(int), means, size=(resamples, len(used))) / sizes
    variance = float(np.var(boots.mean(axis=1), ddof=1)) if resamples > 1 else 0.0
    kish = len(used) ** 2 / float(np.sum(1.0 / sizes))  # (sum of item weights)^2 / sum of squares
    lo, hi = effective_interval(value, variance, n_max=kish, n_fallback=kish)
    return percent_metric(value, lo, hi, int(sizes.sum()), excluded, STRATIFIED.format(by=by))
