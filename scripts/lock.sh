#!/usr/bin/env bash
# Recompile locks/<profile>.txt from setup.cfg with pip-tools (exact versions + hashes).
#
#   bash scripts/lock.sh              # keep every pin that still satisfies setup.cfg
#   bash scripts/lock.sh --upgrade    # move every pin to the newest allowed version
#
# pip-tools, not uv: pip-compile resolves with pip itself, so it sees the same packages pip
# installs (including a CPU torch wheel offered through pip's own find-links/index settings),
# and the lock is installed with plain pip. Run it from the cpu venv (bash scripts/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_COMPILE=${PIP_COMPILE:-.venv/bin/pip-compile}
"$PIP_COMPILE" --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
  --no-emit-find-links --extra dev -c constraints.txt -o locks/cpu.txt "$@" setup.cfg
.venv/bin/python scripts/check_lock.py locks/cpu.txt --extra dev
