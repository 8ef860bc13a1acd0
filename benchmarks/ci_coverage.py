"""Coverage of 95% intervals for one rate, where safety-tuned models live (p of 0.2-50%, n of 100-2,285).

Exact coverage, not simulated: for each p and n, the probability (binomial pmf) of the counts whose
interval contains p. Methods: the percentile bootstrap mis-eval used before (1,000 binomial
resamples, seed 1234, re-implemented here since the code is gone), Wilson, and Clopper-Pearson
(mis_eval.core.metrics.exact_interval, what rates use now). Also prints the interval for 50 of 50.

    .venv/bin/python benchmarks/ci_coverage.py
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import binom

from mis_eval.core.metrics import exact_interval

PS = (0.002, 0.02, 0.5)
NS = (100, 510, 2285)
Z = 1.959963984540054


def percentile_bootstrap(x: Any, n: int) -> tuple[Any, Any]:
    """The former mis_eval metrics.rate: binomial resampling of the observed rate, 2.5/97.5 percentiles."""
    lo, hi = [], []
    for k in np.atleast_1d(x):
        means = np.random.default_rng(1234).binomial(n, k / n, size=1000) / n
        a, b = np.percentile(means, [2.5, 97.5])
        lo.append(a)
        hi.append(b)
    return np.array(lo), np.array(hi)


def wilson(x: Any, n: int) -> tuple[Any, Any]:
    p = np.asarray(x, dtype=float) / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


METHODS: dict[str, Callable[[Any, int], tuple[Any, Any]]] = {
    "percentile bootstrap (before)": percentile_bootstrap,
    "Wilson": wilson,
    "Clopper-Pearson (now)": exact_interval,
}


def coverage(method: Callable[[Any, int], tuple[Any, Any]], p: float, n: int) -> float:
    x = np.arange(n + 1)
    lo, hi = method(x, n)
    return float(binom.pmf(x, n, p)[(lo <= p) & (p <= hi)].sum())


def main() -> int:
    cells = [(p, n) for p in PS for n in NS]
    print("coverage of the 95% interval (exact, from the binomial pmf)")
    print(f"{'method':32s}" + "".join(f"  p={100 * p:g}%,n={n}" for p, n in cells))
    for name, method in METHODS.items():
        print(
            f"{name:32s}"
            + "".join(
                f"  {100 * coverage(method, p, n):>{len(f'p={100 * p:g}%,n={n}') - 1}.1f}%" for p, n in cells
            )
        )
    print("\n50 of 50 unsafe:")
    for name, method in METHODS.items():
        lo, hi = method(np.array([50]), 50)
        print(f"  {name:32s} [{100 * float(np.ravel(lo)[0]):.1f}, {100 * float(np.ravel(hi)[0]):.1f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
