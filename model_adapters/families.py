"""The registry of model families: what differs between them is data, not code paths.

A family is one module under `model_adapters/models/` whose `FAMILY` is its record; the
lmms-eval model ids (`model_adapters.registry`) and classes (`model_adapters.family_models`)
are derived from these records. Import-light (layouts only): lmms-eval reads the records
while importing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import model_adapters.models
from model_adapters.layouts import Layout


@dataclass(frozen=True, eq=False)
class Family:
    name: str  # registry key, e.g. "qwen2_vl"; the lmms-eval model id is mis_<name>
    layout: Layout
    default_checkpoint: str  # the paper's checkpoint, used when no pretrained= is given
    model_types: tuple[str, ...] = ()  # accepted config.model_type values (empty: unchecked)
    # transformers backend: processor class name (None: no native transformers class; vLLM only)
    hf_processor: str | None = None
    hf_model: str = "AutoModelForImageTextToText"
    hf_processor_kwargs: dict[str, Any] = field(default_factory=dict)
    hf_image_token: str | None = None  # placeholder the transformers processor wants, if not the layout's
    trust_remote_code: bool = False
    mm_processor_kwargs: dict[str, Any] = field(default_factory=dict)  # vLLM's processor settings
    stop_tokens: tuple[str, ...] = ()  # extra stop tokens besides the model's EOS
    vllm_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. hf_overrides for DeepSeek-VL2
    # the reference's generation budget for this family: caps the task's max_new_tokens (None: no cap;
    # the model arg max_new_tokens= overrides both)
    max_new_tokens: int | None = None
    notes: str = ""  # where we knowingly differ from the reference run, written into every run record
    aliases: tuple[str, ...] = ()  # other lmms-eval --model names, e.g. "mis_internvl"

    @property
    def model_id(self) -> str:
        """lmms-eval --model name, e.g. "mis_qwen2_vl" (the prefix keeps clear of lmms-eval's own)."""
        return f"mis_{self.name}"

    @property
    def supports_hf(self) -> bool:
        return self.hf_processor is not None


class UnknownFamilyError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def index_families(families: Iterable[Family]) -> dict[str, Family]:
    """name -> record; a name, model id or alias claimed twice is an error, not a silent override."""
    by_name: dict[str, Family] = {}
    claimed: dict[str, str] = {}  # model id or alias -> family name
    for family in families:
        for model_name in (family.model_id, *family.aliases):
            if model_name in claimed:
                who = f"{claimed[model_name]!r} and {family.name!r}"
                raise ValueError(f"model name {model_name!r} is claimed by families {who}")
            claimed[model_name] = family.name
        by_name[family.name] = family
    return by_name


_FAMILIES: dict[str, Family] = {}


def all_families() -> dict[str, Family]:
    """Every `FAMILY` under model_adapters/models/, in module-name order (read once)."""
    if not _FAMILIES:
        modules = sorted(m.name for m in pkgutil.iter_modules(model_adapters.models.__path__))
        found = [importlib.import_module(f"model_adapters.models.{m}").FAMILY for m in modules]
        _FAMILIES.update(index_families(found))
    return dict(_FAMILIES)


def get_family(name: str) -> Family:
    families = all_families()
    key = name.removeprefix("mis_")
    if key not in families:
        raise UnknownFamilyError(
            f"unknown model family {name!r}; known families: {', '.join(sorted(families))}"
        )
    return families[key]


def family_for_model_type(model_type: str) -> Family:
    """Auto-detection for `--model mis_vlm` without family=: the family accepting this config.model_type."""
    matches = [f for f in all_families().values() if model_type in f.model_types]
    if len(matches) != 1:
        raise UnknownFamilyError(
            f"cannot tell the model family of a {model_type!r} checkpoint"
            + (f" (candidates: {', '.join(f.name for f in matches)})" if matches else "")
            + f"; pass family=<one of {', '.join(sorted(all_families()))}>"
        )
    return matches[0]
