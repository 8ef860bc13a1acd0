"""lmms-eval model entry point (setup.cfg: lmms_eval.models = mis_eval = model_adapters.registry:manifests).

lmms-eval registers these with overwrite=True, so every id carries the mis_ prefix to never
replace one of its builtin models. Kept import-light: lmms-eval calls this while importing.
"""

from __future__ import annotations

from typing import Any

# model id -> (class path, aliases)
MODELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mis_qwen2_vl": ("model_adapters.models.qwen2_vl.MisQwen2VL", ()),
    "mis_internvl2_5": ("model_adapters.models.internvl2_5.MisInternVL2_5", ("mis_internvl",)),
    "mis_phi3_5_v": ("model_adapters.models.phi3_5_v.MisPhi3_5V", ("mis_phi3_v",)),
    "mis_idefics3": ("model_adapters.models.idefics3.MisIdefics3", ()),
    "mis_llava_onevision": ("model_adapters.models.llava_onevision.MisLlavaOneVision", ()),
    "mis_llava_interleave": ("model_adapters.models.llava_interleave.MisLlavaInterleave", ()),
    "mis_deepseek_vl2": ("model_adapters.models.deepseek_vl2.MisDeepseekVL2", ()),
    "mis_vlm": ("model_adapters.adapter.MultiImageModel", ()),  # family= or auto-detected
    "mis_openai": ("model_adapters.openai_api.MisOpenAI", ("mis_api",)),
}


def manifests() -> list[Any]:
    from lmms_eval.models.registry_v2 import ModelManifest

    return [
        ModelManifest(model_id=mid, simple_class_path=path, aliases=aliases)
        for mid, (path, aliases) in MODELS.items()
    ]
