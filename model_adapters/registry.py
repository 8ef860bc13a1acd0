"""lmms-eval model entry point (setup.cfg: lmms_eval.models = mis_eval = model_adapters.registry:manifests).

lmms-eval registers these with overwrite=True, so every id carries the mis_ prefix to never
replace one of its builtin models. Kept import-light (the family records and their layouts,
no adapter code): lmms-eval calls this while importing.
"""

from __future__ import annotations

from typing import Any

from model_adapters.families import all_families

FAMILY_CLASSES = "model_adapters.family_models"
# the adapters that are not one family: model id -> (class path, aliases)
OTHER_MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mis_vlm": ("model_adapters.adapter.MultiImageModel", ()),  # family= or auto-detected
    "mis_openai": ("model_adapters.openai_api.MisOpenAI", ("mis_api",)),
    "mis_demo": ("model_adapters.demo.DemoModel", ()),  # offline stand-in for `mis-eval demo`
}


# models that take no `cache=PATH` (model_adapters/response_cache.py); every other model here does
NO_RESPONSE_CACHE = frozenset({"mis_demo"})


def takes_response_cache(name: str) -> bool:
    """Whether mis-eval's model `name` (an id or alias) keeps answers in `cache=PATH` for resuming."""
    for model_id, (_, aliases) in models().items():
        if name == model_id or name in aliases:
            return model_id not in NO_RESPONSE_CACHE
    return False


def models() -> dict[str, tuple[str, tuple[str, ...]]]:
    """model id -> (class path, aliases): every family's, then the others; a name used twice is an error."""
    table = {f.model_id: (f"{FAMILY_CLASSES}.{f.model_id}", f.aliases) for f in all_families().values()}
    claimed = {name for _, aliases in table.values() for name in aliases} | set(table)
    for model_id, (path, aliases) in OTHER_MODELS.items():
        taken = claimed & {model_id, *aliases}
        if taken:
            raise ValueError(f"model name(s) {', '.join(sorted(taken))} of {path} are already a family's")
        claimed |= {model_id, *aliases}
        table[model_id] = (path, aliases)
    return table


def manifests() -> list[Any]:
    from lmms_eval.models.registry_v2 import ModelManifest

    return [
        ModelManifest(model_id=mid, simple_class_path=path, aliases=aliases)
        for mid, (path, aliases) in models().items()
    ]
