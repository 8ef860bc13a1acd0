"""Fixed, seeded, stratified subsets: the same documents every time for the same data and seed.

The quick suite must compare like with like across checkpoints, so the subset depends only
on (seed, task, the documents' strata and order), never on the model or on wall-clock time.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any


def allocate(sizes: dict[Hashable, int], n: int) -> dict[Hashable, int]:
    """Split n over groups in proportion to size (largest remainder), at least one each when n allows."""
    keys = sorted(sizes, key=str)
    if n >= sum(sizes.values()):
        return dict(sizes)
    if n < len(keys):  # fewer documents than groups: one from each of the n largest groups
        largest = set(sorted(keys, key=lambda k: (-sizes[k], str(k)))[:n])
        return {k: int(k in largest) for k in keys}
    room = {k: sizes[k] - 1 for k in keys}
    rest, pool = n - len(keys), sum(room.values())
    quota = {k: rest * room[k] / pool for k in keys}
    share = {k: 1 + int(quota[k]) for k in keys}
    by_remainder = sorted(keys, key=lambda k: (-(quota[k] - int(quota[k])), str(k)))
    while sum(share.values()) < n:  # hand out what flooring left over, largest remainder first
        k = next(k for k in by_remainder if share[k] < sizes[k])
        share[k] += 1
        by_remainder.remove(k)
        by_remainder.append(k)
    return share


def stratified_indices(strata: Sequence[Any], n: int | None, *, seed: int, task: str) -> list[int]:
    """Indices (ascending) of a stratified sample of n documents; all of them when n is None or too large."""
    if n is None or n >= len(strata):
        return list(range(len(strata)))
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, s in enumerate(strata):
        groups[str(s)].append(i)
    quota = allocate({k: len(v) for k, v in groups.items()}, n)
    chosen: list[int] = []
    for key in sorted(groups, key=str):
        rng = random.Random(f"{seed}:{task}:{key}")
        chosen += rng.sample(groups[key], quota[key])
    return sorted(chosen)


def subset_task(
    task_obj: Any, n: int | None, stratify: str | None, *, seed: int, name: str
) -> tuple[int, int, str]:
    """Cut an lmms-eval task's evaluation split down to the subset, in place.

    Returns (kept, total, how). Works for any ConfigurableTask, including ones that load
    their own data, because it edits the loaded split rather than the loading config.
    """
    split = task_obj.config.test_split or task_obj.config.validation_split
    docs = task_obj.dataset[split]
    total = len(docs)
    columns = getattr(docs, "column_names", None) or []
    if stratify and stratify in columns:
        strata: Sequence[Any] = docs[stratify]  # one column only: images are not decoded
        how = f"stratified by {stratify}"
    else:
        strata = [""] * total
        how = "random" + (f" ({stratify!r} is not a field of this task)" if stratify else "")
    if "item_id" in columns:  # several documents per item (MIR `single`): draw items, keep all their docs
        items = list(docs["item_id"])
        first = list(dict.fromkeys(items))
        where = {item: i for i, item in reversed(list(enumerate(items)))}
        picked = stratified_indices([strata[where[k]] for k in first], n, seed=seed, task=name)
        chosen = {first[i] for i in picked}
        idx = [i for i, item in enumerate(items) if item in chosen]
        if len(first) < total:
            how += f", {len(chosen)} of {len(first)} items"
    else:
        idx = stratified_indices(strata, n, seed=seed, task=name)
    if len(idx) < total:
        task_obj.dataset[split] = docs.select(idx)
        no_media = getattr(task_obj, "dataset_no_image", None)
        if no_media is not None and no_media is not task_obj.dataset:
            no_media[split] = no_media[split].select(idx)
    return len(idx), total, how
