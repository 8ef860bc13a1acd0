"""Paired tests shared by the attribution report and the self-test flip report."""

from __future__ import annotations


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (binomial, p = 1/2).

    b: pairs positive in the first condition only; c: in the second only. With no
    discordant pair there is no evidence of a difference: p = 1.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest  # here, not at import: scipy.stats takes ~0.7 s to import

    return float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
