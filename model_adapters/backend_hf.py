"""transformers backend: batched generate with left padding, for machines without vLLM."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from typing import Any

from PIL import Image

from mis_eval.core.samples import mark_failed
from model_adapters.batching import GenRequest, by_params, chunks, isolate
from model_adapters.families import Family
from model_adapters.hf_loading import (
    CheckpointError,
    check_image_text_model,
    check_model_type,
    load_processor,
    read_model_type,
)
from model_adapters.image_spans import SpanGuard
from model_adapters.params import GenParams

log = logging.getLogger(__name__)


def resolve_device(device: str | None) -> str:
    import torch

    multi_process = os.environ.get("WORLD_SIZE", "1") != "1"
    if multi_process and torch.cuda.is_available():  # accelerate launch / torchrun: one GPU per process
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | None) -> Any:
    import torch

    if dtype in (None, "auto"):
        return "auto"
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use auto, bfloat16, float16 or float32")
    return value


class HFBackend:
    name = "hf"
    lockstep = False  # each process generates on its own

    def __init__(
        self,
        family: Family,
        path: str,
        *,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str | None = "auto",
        max_model_len: int | None = None,
        trust_remote_code: bool = False,
        processor_kwargs: dict[str, Any] | None = None,
        max_images: int | None = None,
        checkpoint_sampling: bool = False,
        model: Any = None,
    ) -> None:
        """`model`: an already-built model to serve instead of loading the checkpoint's weights (the
        device check, benchmarks/gpu_check.py, builds random full-size models on the GPU rather than
        write and read 16 GB of weights); `path` still gives its config, tokenizer and processor."""
        import transformers

        if not family.supports_hf:
            raise CheckpointError(
                f"{family.name} has no native transformers implementation; run it with backend=vllm"
            )
        self.family, self.path = family, path
        model_type = read_model_type(path)
        check_model_type(family, path, model_type)
        if family.verify_image_spans:  # the generic family: any architecture transformers loads as a VLM
            check_image_text_model(path, model_type)
        kwargs = {**family.hf_processor_kwargs, **(processor_kwargs or {})}
        self.processor = load_processor(family, path, trust_remote_code, **kwargs)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "left"
        self.template_owner = family.layout.template_owner(self.processor)
        self.image_token = family.hf_image_token
        self.guard = SpanGuard.for_family(family, self.processor, path)
        self.batch_size = max(1, int(batch_size))
        self.device = resolve_device(device)
        if model is None:
            model_cls = getattr(transformers, family.hf_model)
            model = model_cls.from_pretrained(
                path, dtype=resolve_dtype(dtype), trust_remote_code=trust_remote_code
            ).to(self.device)
        else:
            self.device = str(model.device)
        self.model = model.eval()
        self.context = int(max_model_len or _context_length(self.model.config))
        self.checkpoint_sampling = bool(checkpoint_sampling)
        # What the checkpoint's generation_config.json would add to every generate() call
        # (Qwen2-VL ships repetition_penalty=1.05, top_k=1, ...). The reference sampled with vLLM,
        # which did not apply these; so they are dropped unless checkpoint_sampling=true.
        self.checkpoint_extras = sampling_extras(self.model.generation_config)
        if not self.checkpoint_sampling:
            self.model.generation_config = token_ids_only(self.model.generation_config)
        self._probe(max_images or 2)

    def _probe(self, n_images: int) -> None:
        """Fail at start-up, not after hours, when the processor cannot take n images in one prompt."""
        prompt = self.family.layout.render("probe", n_images, self.template_owner, self.image_token)
        images = [Image.new("RGB", (56 + 8 * i, 56), (40 * i % 256, 90, 160)) for i in range(n_images)]
        try:
            inputs = self._encode([prompt], [images])
        except Exception as exc:
            raise CheckpointError(
                f"the processor of checkpoint {self.path!r} cannot take {n_images} images in one prompt "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if "pixel_values" not in inputs:
            raise CheckpointError(f"the processor of checkpoint {self.path!r} returned no pixel_values")
        if self.guard is not None:  # at start-up too; each image count is verified again on real requests
            probe = GenRequest(key="start-up probe", prompt=prompt, images=images, params=GenParams(1))
            self.guard.spans.check(inputs["input_ids"][0].tolist(), probe)

    def _encode(self, prompts: list[str], images: list[list[Image.Image]]) -> Any:
        bos = str(getattr(self.tokenizer, "bos_token", None) or "")
        has_bos = bool(bos) and all(p.startswith(bos) for p in prompts)  # the layout wrote it already
        return self.processor(
            text=prompts,
            images=images if any(images) else None,
            padding=True,
            return_tensors="pt",
            add_special_tokens=not has_bos,
        )

    def generate(self, batch: Sequence[GenRequest]) -> list[str]:
        if self.guard is not None:  # outside `isolate`: a template that drops images stops the run
            self.guard.verify(batch, self._input_ids)
        out: list[str] = [""] * len(batch)
        for params, idx in by_params(batch).items():
            for part in chunks(idx, self.batch_size):
                reqs = [batch[i] for i in part]
                texts = isolate(reqs, functools.partial(self._generate, params=params))
                for i, text in zip(part, texts, strict=True):
                    out[i] = text
        return out

    def _input_ids(self, req: GenRequest) -> list[int]:
        return [int(i) for i in self._encode([req.prompt], [req.images])["input_ids"][0].tolist()]

    def _generate(self, reqs: Sequence[GenRequest], params: GenParams) -> list[str]:
        import torch

        inputs = self._encode([r.prompt for r in reqs], [r.images for r in reqs])
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        too_long = [n >= self.context for n in lengths]
        if any(too_long):  # record those, run the others
            fits = [r for r, bad in zip(reqs, too_long, strict=True) if not bad]
            texts = iter(self._generate(fits, params) if fits else [])
            return [
                self._too_long(r, n) if bad else next(texts)
                for r, n, bad in zip(reqs, lengths, too_long, strict=True)
            ]
        inputs = inputs.to(self.model.device)
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        config = generation_config(params, self.checkpoint_sampling)
        extra: dict[str, Any] = {}
        if params.stop:  # stop early; the text is cut at the stop string below
            config.stop_strings = list(params.stop)
            extra["tokenizer"] = self.tokenizer
        with torch.inference_mode():
            generated = self.model.generate(**inputs, generation_config=config, **extra)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [params.truncate(t).strip() for t in texts]

    def _too_long(self, req: GenRequest, n_tokens: int) -> str:
        reason = (
            f"{req.key}: prompt of {n_tokens} tokens (text + {len(req.images)} images) does not fit "
            f"the context of {self.context} tokens; raise max_model_len or lower the image resolution"
        )
        log.warning(reason)
        return mark_failed(reason)


TOKEN_ID_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
NOT_DECODING = frozenset(
    {
        "_from_model_config",
        "transformers_version",
        "use_cache",
        "output_attentions",
        "output_hidden_states",
        "output_scores",
        "output_logits",
        "return_dict_in_generate",
    }
)


def token_ids_only(config: Any) -> Any:
    """A GenerationConfig with only the checkpoint's special token ids: transformers fills what a call
    leaves unset from the model's config, so this is what keeps checkpoint sampling extras out."""
    from transformers import GenerationConfig

    return GenerationConfig(
        **{k: getattr(config, k) for k in TOKEN_ID_FIELDS if getattr(config, k, None) is not None}
    )


def sampling_extras(config: Any) -> dict[str, Any]:
    """The checkpoint's generation_config entries beyond token ids (what would change decoding)."""
    diff = config.to_diff_dict() if config is not None else {}
    return {k: v for k, v in sorted(diff.items()) if k not in TOKEN_ID_FIELDS and k not in NOT_DECODING}


def generation_config(params: GenParams, checkpoint_sampling: bool = False) -> Any:
    """The decoding of the reference's vLLM SamplingParams, spelled out: greedy (or temperature/top_p
    sampling without top-k), one beam, no length penalty, no minimum length, and no repetition
    penalty unless the task sets one (`repetition_penalty` in its generation_kwargs).

    With checkpoint_sampling only the task's decoding is set, so transformers fills everything else
    from the checkpoint's generation_config (repetition_penalty, ...), as a plain generate() does."""
    from transformers import GenerationConfig

    sampling: dict[str, Any] = {"do_sample": False}
    if not params.greedy:
        sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
    if checkpoint_sampling:
        if params.repetition_penalty != 1.0:  # the task's own value wins over the checkpoint's
            sampling["repetition_penalty"] = params.repetition_penalty
        return GenerationConfig(max_new_tokens=params.max_new_tokens, **sampling)
    if not params.greedy:
        sampling["top_k"] = 0  # vLLM's top_k=-1: off (transformers would default to 50)
    return GenerationConfig(
        max_new_tokens=params.max_new_tokens,
        num_beams=1,
        repetition_penalty=params.repetition_penalty,  # 1.0 unless the task sets one (MIR: 1.05)
        encoder_repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        length_penalty=1.0,
        min_new_tokens=0,
        **sampling,
    )


def _context_length(config: Any) -> int:
    for cfg in (getattr(config, "text_config", None), config):
        value = getattr(cfg, "max_position_embeddings", None) if cfg is not None else None
        if value:
            return int(value)
    return 32768
