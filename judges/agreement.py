"""Agreement between judges over the same samples, and a majority-vote verdict.

Pure functions over lists of Verdicts (one list per judge, same sample order). A failed verdict
(ERROR / UNPARSEABLE) is never a vote for any label: pairwise statistics use only samples both
judges graded (the rest are counted), and a majority needs more than half of ALL judges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from judges.base import Status, Verdict


@dataclass(frozen=True)
class PairAgreement:
    judges: tuple[str, str]
    n: int  # samples both judges graded
    excluded: int  # samples where either judge failed
    percent_agreement: float | None  # 0-100
    cohen_kappa: float | None  # None when undefined (no samples, or both judges constant on one label)
    confusion: pd.DataFrame  # rows: judge A outcome, columns: judge B outcome (failures included)

    def to_dict(self) -> dict[str, Any]:
        return {
            "judges": list(self.judges),
            "n": self.n,
            "excluded": self.excluded,
            "percent_agreement": self.percent_agreement,
            "cohen_kappa": self.cohen_kappa,
            "confusion": {
                str(r): {str(c): int(v) for c, v in row.items()}
                for r, row in self.confusion.to_dict(orient="index").items()
            },
        }


def outcome(v: Verdict, *, with_detail: bool = False) -> str:
    """The class a verdict falls in: its label (optionally label/detail, e.g. "safe/2"), or its
    failure status."""
    if v.status is not Status.OK:
        return str(v.status)
    if with_detail and v.detail:
        return "/".join([str(v.label), *map(str, v.detail.values())])
    return str(v.label)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels; None where chance agreement is 1 (kappa undefined)."""
    if len(a) != len(b):
        raise ValueError(f"rater lists differ in length: {len(a)} vs {len(b)}")
    n = len(a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in ca.keys() | cb.keys()) / (n * n)
    return None if pe == 1 else (po - pe) / (1 - pe)


def pair_agreement(
    a: Sequence[Verdict], b: Sequence[Verdict], names: tuple[str, str], *, with_detail: bool = False
) -> PairAgreement:
    if len(a) != len(b):
        raise ValueError(f"judges {names} graded different numbers of samples: {len(a)} vs {len(b)}")
    oa = [outcome(v, with_detail=with_detail) for v in a]
    ob = [outcome(v, with_detail=with_detail) for v in b]
    both = [(x, y) for x, y, va, vb in zip(oa, ob, a, b, strict=True) if va.ok and vb.ok]
    n = len(both)
    agree = 100.0 * sum(x == y for x, y in both) / n if n else None
    kappa = cohen_kappa([x for x, _ in both], [y for _, y in both])
    order = sorted(set(oa) | set(ob), key=lambda s: (s in ("error", "unparseable"), s))
    table = pd.crosstab(
        pd.Categorical(oa, categories=order),
        pd.Categorical(ob, categories=order),
        rownames=[names[0]],
        colnames=[names[1]],
        dropna=False,
    )
    return PairAgreement(names, n, len(a) - n, agree, kappa, table)


def agreement(verdicts: Mapping[str, Sequence[Verdict]], *, with_detail: bool = False) -> list[PairAgreement]:
    """Every pair of judges (in the mapping's order)."""
    names = list(verdicts)
    return [
        pair_agreement(verdicts[x], verdicts[y], (x, y), with_detail=with_detail)
        for i, x in enumerate(names)
        for y in names[i + 1 :]
    ]


def majority_vote(
    votes: Sequence[Verdict], *, judge: str = "majority", detail_required_for: Collection[str] = ()
) -> Verdict:
    """One sample's verdicts from several judges -> the majority verdict.

    The label must be chosen by more than half of all judges (a failed judge counts against every
    label), otherwise the result is an ERROR verdict saying why: never a default safe or unsafe.
    The detail (MIS: the perception level) is voted the same way among the judges that chose the
    winning label; without a strict majority there it is empty and the error field says so; for
    labels in `detail_required_for` (MIS: "safe", whose bucket depends on perception) it is an ERROR.
    """
    if not votes:
        raise ValueError("majority_vote needs at least one verdict")
    tally = Counter(v.label for v in votes if v.ok)
    summary = ", ".join(f"{k}={c}" for k, c in sorted(tally.items())) or "no valid votes"
    failed = sum(not v.ok for v in votes)
    detail = f"{summary}; {failed} failed of {len(votes)}"
    common = tally.most_common(1)
    if not common or common[0][1] * 2 <= len(votes):
        return Verdict(Status.ERROR, error=f"no majority: {detail}", judge=judge)
    label = common[0][0]
    winners = [tuple(v.detail.items()) for v in votes if v.ok and v.label == label and v.detail]
    chosen: dict[str, Any] = {}
    note = None
    if winners:
        ((d, c),) = Counter(winners).most_common(1)
        if c * 2 > len(winners):
            chosen = dict(d)
        else:
            names = "/".join(dict.fromkeys(k for w in winners for k, _ in w))
            values = sorted(w[0][1] if len(w) == 1 else tuple(x for _, x in w) for w in winners)
            note = f"no {names} majority among {label} votes: {values}"
            if label in detail_required_for:
                return Verdict(Status.ERROR, error=f"{note}; {detail}", judge=judge)
    return Verdict(Status.OK, label=label, judge=judge, raw=detail, error=note, detail=chosen)
