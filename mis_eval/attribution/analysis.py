"""One group's attribution table: rates per variant and the paired measures, overall and per category."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mis_eval.attribution.load import Group, mis_design, variant_order
from mis_eval.attribution.measures import (
    RESAMPLES,
    Outcome,
    Paired,
    VariantRates,
    difference,
    order_sensitivity,
    uplift,
    variant_rates,
)
from mis_eval.core.metrics import SEED
from mis_tasks.registry import AttributionDesign

OVERALL = "(all)"


@dataclass
class Scope:
    """The numbers for one set of items: all of them, or one category."""

    name: str
    n_items: int
    variants: list[VariantRates] = field(default_factory=list)
    paired: list[Paired] = field(default_factory=list)

    def measure(self, name: str) -> Paired | None:
        return next((p for p in self.paired if p.name == name), None)

    def asr(self, variant: str) -> float | None:
        v = next((v for v in self.variants if v.variant == variant), None)
        return v.rates["ASR"].value if v else None


@dataclass
class Result:
    group: Group
    scopes: list[Scope]
    notes: list[str] = field(default_factory=list)

    @property
    def overall(self) -> Scope:
        return self.scopes[0]


def paired_measures(
    runs: Mapping[str, Mapping[str, Outcome]],
    ids: Sequence[str],
    *,
    resamples: int,
    seed: int,
    design: AttributionDesign | None = None,
) -> list[Paired]:
    """Every paired measure the present variants allow (uplift needs the default and every one-image
    variant: MIS both, first and second)."""
    d = design or mis_design()
    kw = {"resamples": resamples, "seed": seed}
    out = []
    if d.singles and set(d.singles) <= set(runs):
        out.append(uplift(runs, ids, default=d.default, singles=d.singles, **kw))
    if d.reordered and d.reordered in runs:
        out.append(order_sensitivity(runs, ids, default=d.default, reordered=d.reordered, **kw))
    out += [difference(d.default, v, runs, ids, **kw) for v in variant_order(runs, d) if v != d.default]
    return out


def _scope(
    name: str,
    runs: Mapping[str, Mapping[str, Outcome]],
    ids: Sequence[str],
    *,
    resamples: int,
    seed: int,
    design: AttributionDesign,
) -> Scope:
    return Scope(
        name,
        len(ids),
        [variant_rates(v, runs[v], ids, design.rates) for v in variant_order(runs, design)],
        paired_measures(runs, ids, resamples=resamples, seed=seed, design=design),
    )


def analyse(group: Group, *, resamples: int = RESAMPLES, seed: int = SEED, by: str = "category") -> Result:
    """Paired over the item ids every variant run of the group has."""
    id_sets = [set(r.docs) for r in group.runs.values()]
    common = set.intersection(*id_sets)
    ids = sorted(common, key=lambda i: (len(i), i))
    notes = []
    if any(s != common for s in id_sets):
        notes.append(f"{len(set.union(*id_sets) - common)} item(s) not in every variant run: left out")
    design = group.plan
    runs = {v: r.outcomes for v, r in group.runs.items()}
    scopes = [_scope(OVERALL, runs, ids, resamples=resamples, seed=seed, design=design)]
    docs = group.runs[design.default].docs
    for cat in sorted({str(docs[i].get(by)) for i in ids}):
        part = [i for i in ids if str(docs[i].get(by)) == cat]
        scopes.append(_scope(cat, runs, part, resamples=resamples, seed=seed, design=design))
    missing = [v for v in design.variants if v != design.default and v not in group.runs]
    if missing:
        notes.append("no run of variant(s) " + ", ".join(missing) + ": their measures are left out")
    return Result(group, scopes, notes)
