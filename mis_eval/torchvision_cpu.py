"""Make PyPI's (CUDA-built) torchvision importable next to a CPU-only torch.

Why: vLLM's Qwen2-VL (and other) model code imports transformers' image processors, which import
torchvision. PyPI's torchvision wheel is a CUDA build; next to the CPU torch its compiled ops
library does not load, and `import torchvision` then dies in its meta registrations with
"operator torchvision::nms does not exist". Removing torchvision (what the plain CPU install
does) is not an option for vLLM, so instead the two op schemas torchvision's Python code needs at
import time, `torchvision::nms` and `torchvision::qnms`, are defined before torchvision is first
imported. Only the schemas: torchvision's compiled ops (`torchvision.ops.nms`, `roi_align`, ...)
stay unavailable and say so when called; the image and video transforms vLLM and transformers use
are pure Python and work.

How: `scripts/install_vllm_cpu.sh` puts a one-line `.pth` file into the venv's site-packages
(`import mis_eval.torchvision_cpu as m; m.install()`), so every interpreter of that venv (vLLM's
worker processes included) runs `install()`. That only adds a finder to `sys.meta_path`; torch
is not imported at start-up. The finder acts once, on the first `import torchvision`: if torch
was built without CUDA and the schemas are missing, it defines them; then the normal import
proceeds. Where torch has CUDA it does nothing.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from typing import Any

SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_LIBRARY: list[Any] = []  # keeps the torch.library.Library alive (dropping it unregisters the ops)


def register_schemas() -> bool:
    """Define the missing torchvision op schemas when torch has no CUDA; True if it defined them."""
    import torch

    if torch.backends.cuda.is_built():
        return False
    missing = [name for name in SCHEMAS if not _has_op(torch, name)]
    if not missing:
        return False
    lib = torch.library.Library("torchvision", "DEF")
    for name in missing:
        lib.define(SCHEMAS[name])
    _LIBRARY.append(lib)
    return True


def _has_op(torch: Any, name: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
    except RuntimeError:
        return False
    return True


class _TorchvisionFinder(importlib.abc.MetaPathFinder):
    """Runs register_schemas() once, just before the first `import torchvision`; finds nothing itself."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> None:
        if fullname == "torchvision":
            uninstall()
            register_schemas()
        return None


def install() -> None:
    if "torchvision" not in sys.modules and not any(isinstance(f, _TorchvisionFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionFinder())


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TorchvisionFinder)]
