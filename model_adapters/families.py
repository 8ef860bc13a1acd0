"""The registry of model families: what differs between them is data, not code paths.

A family is one module under `model_adapters/models/` whose `FAMILY` is its record; the
lmms-eval model ids (`model_adapters.registry`) and classes (`model_adapters.family_models`)
are derived from these records. Import-light (layouts only): lmms-eval reads the records
while importing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import model_adapters.models
from model_adapters.layouts import Layout


@dataclass(frozen=True)
class Quirks:
    """What one architecture needs beyond the generic family's defaults: data, as a family's record is.

    `image_marker` is the token the processor writes exactly once per image (or the processor
    attribute holding it), for architectures that write one image as several runs of image tokens
    (tiles or rows with separators between them); the image-span check counts it instead of runs.
    """

    image_marker: str | None = None
    hf_processor_kwargs: Mapping[str, Any] = field(default_factory=dict)
    mm_processor_kwargs: Mapping[str, Any] = field(default_factory=dict)
    vllm_kwargs: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""


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
    # the generic family: check before generating that n images became n image spans in the input ids
    # (model_adapters/image_spans.py), and apply the per-model_type quirks below
    verify_image_spans: bool = False
    image_marker: str | None = None  # see Quirks
    architectures: Mapping[str, Quirks] = field(default_factory=dict)  # config.model_type -> quirks

    def for_model_type(self, model_type: str) -> Family:
        """This record with the quirks of `model_type` applied (itself when it lists none)."""
        quirks = self.architectures.get(model_type)
        if quirks is None:
            return self
        notes = " ".join(n for n in (self.notes, quirks.notes) if n)
        return replace(
            self,
            image_marker=quirks.image_marker or self.image_marker,
            hf_processor_kwargs={**self.hf_processor_kwargs, **quirks.hf_processor_kwargs},
            mm_processor_kwargs={**self.mm_processor_kwargs, **quirks.mm_processor_kwargs},
            vllm_kwargs={**self.vllm_kwargs, **quirks.vllm_kwargs},
            notes=notes,
        )

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


GENERIC = "generic"  # the family of every model_type no other family claims (models/generic.py)


def family_for_model_type(model_type: str) -> Family:
    """Auto-detection for `--model mis_vlm` without family=: the family accepting this config.model_type,
    else the generic one (the checkpoint's own chat template, with its image-span check)."""
    families = all_families()
    matches = [f for f in families.values() if model_type in f.model_types]
    if not matches and GENERIC in families:
        return families[GENERIC]
    if len(matches) != 1:
        raise UnknownFamilyError(
            f"cannot tell the model family of a {model_type!r} checkpoint"
            + (f" (candidates: {', '.join(f.name for f in matches)})" if matches else "")
            + f"; pass family=<one of {', '.join(sorted(families))}>"
        )
    return matches[0]
