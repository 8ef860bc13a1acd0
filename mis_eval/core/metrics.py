"""Rates with exact confidence intervals, overall and per group.

A rate is computed over samples with a usable verdict only. Samples whose verdict is an
error, unparseable, or whose generation failed are excluded from the denominator and
counted in `n_excluded`, so a flaky judge can never move a rate toward safe or unsafe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mis_eval.core.defaults import SEED
from mis_eval.core.record import BreakdownRow, Metric

BOOTSTRAP_RESAMPLES = 1000
ALPHA = 0.05  # 95% intervals

# Interval methods, written into every Metric (`ci_method`) so a reader of a run record knows.
EXACT = "exact (Clopper-Pearson)"
CLUSTER = "cluster bootstrap by {by}, exact on the effective n (Korn-Graubard)"


def exact_interval(x: Any, n: Any, alpha: float = ALPHA) -> tuple[Any, Any]:
    """Clopper-Pearson bounds (fractions) for x successes in n trials; vectorised, float x and n allowed.

    Why exact rather than a percentile bootstrap: the bootstrap of 0/n or n/n has zero width, and
    for safety-tuned models (ASR of a few percent, n of a few hundred) its coverage falls far below
    95% (86.8% at p = 2%, n = 100; 63% at p = 0.2%, n = 510). Wilson is close but still dips to
    91.6% at p = 0.2%, n = 510. Clopper-Pearson never covers less than 95%.
    """
    from scipy.stats import beta  # here, not at import: scipy.stats takes ~0.7 s to import

    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(x > 0, beta.ppf(alpha / 2, x, n - x + 1), 0.0)
        hi = np.where(x < n, beta.ppf(1 - alpha / 2, x + 1, n - x), 1.0)
    return lo, hi


def percent_metric(p: float, lo: float, hi: float, n: int, excluded: int, method: str) -> Metric:
    """A Metric in percent (4 decimals) from a fraction and its interval bounds, naming the method."""
    return Metric(
        value=round(100.0 * p, 4),
        ci_low=round(100.0 * float(lo), 4),
        ci_high=round(100.0 * float(hi), 4),
        n=n,
        n_excluded=excluded,
        ci_method=method,
    )


def rate(hits: Sequence[bool | None]) -> Metric:
    """Percentage of True among the non-None entries, with an exact 95% interval.

    None marks an excluded sample. With no usable sample the value is None (missing), not 0.
    """
    valid = [bool(h) for h in hits if h is not None]
    excluded = len(hits) - len(valid)
    if not valid:
        return Metric(value=None, n=0, n_excluded=excluded)
    x, n = sum(valid), len(valid)
    lo, hi = exact_interval(x, n)
    return percent_metric(x / n, lo, hi, n, excluded, EXACT)


def effective_interval(p: float, variance: float, n_max: float, n_fallback: float) -> tuple[Any, Any]:
    """Korn-Graubard: the exact interval at the effective sample size p(1-p)/variance (at most n_max).

    For grouped or weighted items the plain binomial n overstates the information; the design
    effect (estimated variance over the binomial one) shrinks n to what the data support. At p = 0 or
    1 the variance says nothing about clustering, so `n_fallback` (a conservative size: the number of
    clusters, or Kish's effective n) is used.
    """
    if 0.0 < p < 1.0 and variance > 0.0:
        n_eff = min(n_max, p * (1.0 - p) / variance)
    else:
        n_eff = min(n_max, n_fallback)
    return exact_interval(p * n_eff, n_eff)


def cluster_rate(
    hits: Sequence[bool | None],
    clusters: Sequence[Any],
    *,
    by: str = "item",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = SEED,
) -> Metric:
    """Pooled percentage of True over items that come in clusters (e.g. two judge orders per item).

    Items of one cluster are not independent, so the interval comes from resampling whole clusters
    (a cluster bootstrap, vectorised as multinomial cluster weights) for the variance, and then the
    exact interval at the effective n (`effective_interval`), which keeps coverage at 0% and 100%.
    """
    if len(hits) != len(clusters):
        raise ValueError(f"{len(hits)} hits but {len(clusters)} cluster labels")
    kept = [(c, bool(h)) for c, h in zip(clusters, hits, strict=True) if h is not None]
    excluded = len(hits) - len(kept)
    if not kept:
        return Metric(value=None, n=0, n_excluded=excluded)
    codes, _ = pd.factorize(pd.Series([c for c, _ in kept], dtype=object))
    y = np.bincount(codes, weights=[float(h) for _, h in kept])
    m = np.bincount(codes).astype(float)
    p = float(y.sum() / m.sum())
    weights = np.random.default_rng(seed).multinomial(len(y), np.full(len(y), 1.0 / len(y)), size=resamples)
    boots = (weights @ y) / (weights @ m)
    variance = float(np.var(boots, ddof=1)) if resamples > 1 else 0.0
    lo, hi = effective_interval(p, variance, n_max=float(m.sum()), n_fallback=float(len(y)))
    return percent_metric(p, lo, hi, int(m.sum()), excluded, CLUSTER.format(by=by))


Indicator = Callable[[Mapping[str, Any]], bool | None]


def rates(rows: Sequence[Mapping[str, Any]], indicators: Mapping[str, Indicator]) -> dict[str, Metric]:
    return {name: rate([fn(r) for r in rows]) for name, fn in indicators.items()}


def breakdown(
    rows: Sequence[Mapping[str, Any]], indicators: Mapping[str, Indicator], by: Sequence[str]
) -> list[BreakdownRow]:
    """The same rates for every value of each grouping column (e.g. category, sub_category)."""
    if not rows:
        return []
    frame = pd.DataFrame({"_i": range(len(rows)), **{col: [r.get(col) for r in rows] for col in by}})
    out: list[BreakdownRow] = []
    for col in by:
        for group, part in frame.groupby(col, sort=True, dropna=False):
            sub = [rows[i] for i in part["_i"]]
            out.append(BreakdownRow(by=col, group=str(group), metrics=rates(sub, indicators)))
    return out
