"""Loading checkpoints' configs and processors with clear errors, on machines with or without torchvision."""

from __future__ import annotations

import functools
from typing import Any

from model_adapters.families import Family


class CheckpointError(ValueError):
    """The checkpoint cannot serve this family (wrong architecture, single-image processor, ...)."""


@functools.cache
def images_only_processor(proc_cls: Any) -> Any:
    """`proc_cls` without its video processor.

    Several multi-image processors (Qwen2-VL, LLaVA-OneVision, InternVL) also hold a video
    processor that needs torchvision, which CPU-only installs lack. Images never need it, so this
    subclass simply does not load or require one.
    """

    class ImagesOnly(proc_cls):
        @classmethod
        def get_attributes(cls) -> list[str]:
            return [a for a in super().get_attributes() if a != "video_processor"]

    ImagesOnly.__name__ = ImagesOnly.__qualname__ = proc_cls.__name__
    ImagesOnly.__module__ = proc_cls.__module__
    return ImagesOnly


def load_processor(
    family: Family, path: str, trust_remote_code: bool, tokenizer_only: bool = False, **kwargs: Any
) -> Any:
    """The checkpoint's processor; its tokenizer alone when that is all the prompt needs."""
    import transformers

    if tokenizer_only or family.hf_processor is None:
        return transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    try:
        return transformers.AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)
    except (ImportError, OSError) as exc:  # no torchvision, or a checkpoint saved without video config
        if not any(word in str(exc).lower() for word in ("torchvision", "video processor")):
            raise
    proc_cls = getattr(transformers, processor_class_name(family, path))
    return images_only_processor(proc_cls).from_pretrained(path, **kwargs)


def processor_class_name(family: Family, path: str) -> str:
    """The family's processor class; for the generic family (`AutoProcessor`), the one transformers
    maps the checkpoint's model_type to."""
    if family.hf_processor != "AutoProcessor":
        return str(family.hf_processor)
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    model_type = read_model_type(path)
    name = PROCESSOR_MAPPING_NAMES.get(model_type)
    if not isinstance(name, str):
        raise CheckpointError(f"transformers has no processor class for {model_type!r} (checkpoint {path!r})")
    return name


def read_model_type(path: str) -> str:
    """config.json's model_type, read as data: remote-code configs need no code to be checked."""
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the config of checkpoint {path!r}: {exc}") from exc
    return str(config.get("model_type", ""))


def check_image_text_model(path: str, model_type: str) -> None:
    """The generic family loads AutoModelForImageTextToText: refuse, before loading anything, a
    checkpoint whose model_type transformers does not map to it (a text-only model, say)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise CheckpointError(
            f"checkpoint {path!r} is a {model_type!r} model, which transformers does not load as an "
            "image-text-to-text model (AutoModelForImageTextToText): not a vision-language model it "
            "knows; backend=vllm runs the architectures vLLM supports"
        )


def check_model_type(family: Family, path: str, model_type: str) -> None:
    if family.model_types and model_type not in family.model_types:
        raise CheckpointError(
            f"checkpoint {path!r} is a {model_type!r} model, not a {family.name} one "
            f"(expected model_type in {list(family.model_types)}); pick the matching --model"
        )


def resolve_checkpoint(path: str) -> str:
    """The checkpoint's absolute directory; for a hub id, its cached snapshot (which names the revision),
    so that answers of another download of the same name are not mistaken for this one's."""
    from pathlib import Path

    if Path(path).exists():
        return str(Path(path).resolve())
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(path, "config.json")
    except ValueError:  # not a repo id either
        return path
    return str(Path(config).parent) if isinstance(config, str) else path
