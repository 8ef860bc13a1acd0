"""The registry of model families: what differs between them is data, not code paths."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from model_adapters.layouts import Layout


@dataclass(frozen=True, eq=False)
class Family:
    name: str  # registry key, e.g. "qwen2_vl"
    model_id: str  # lmms-eval --model name, e.g. "mis_qwen2_vl"
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

    @property
    def supports_hf(self) -> bool:
        return self.hf_processor is not None


_FAMILIES: dict[str, Family] = {}
FAMILY_MODULES = (
    "qwen2_vl",
    "internvl2_5",
    "phi3_5_v",
    "idefics3",
    "llava_onevision",
    "llava_interleave",
    "deepseek_vl2",
)


class UnknownFamilyError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def register_family(family: Family) -> Family:
    if family.name in _FAMILIES and _FAMILIES[family.name] is not family:
        raise ValueError(f"model family {family.name!r} is registered twice")
    _FAMILIES[family.name] = family
    return family


def _load_builtin() -> None:
    for module in FAMILY_MODULES:
        importlib.import_module(f"model_adapters.models.{module}")


def all_families() -> dict[str, Family]:
    _load_builtin()
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
