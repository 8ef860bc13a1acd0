"""lmms-eval's model class of each family: `MultiImageModel` bound to that family's record.

Made from the records (model_adapters/models/), so a family is written down once. lmms-eval
imports a class by its path, so each is an attribute of this module named by its model id
(`model_adapters.family_models.mis_qwen2_vl`).
"""

from __future__ import annotations

from model_adapters.adapter import MultiImageModel
from model_adapters.families import Family, all_families


def bound_model(family: Family) -> type[MultiImageModel]:
    """A subclass fixed to `family` (`--model mis_<family>`; `mis_vlm` takes family= instead)."""
    doc = f"`--model {family.model_id}`: the {family.name} family (default {family.default_checkpoint})."
    attrs = {"family_name": family.name, "__module__": __name__, "__doc__": doc}
    return type(family.model_id, (MultiImageModel,), attrs)


MODELS: dict[str, type[MultiImageModel]] = {f.model_id: bound_model(f) for f in all_families().values()}
globals().update(MODELS)
