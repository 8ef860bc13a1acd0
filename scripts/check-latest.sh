#!/usr/bin/env bash
# Drift check: install the newest versions setup.cfg allows into a scratch venv (not the lock)
# and run the demo plus the fast tests, so the next upstream break is found by us, not a user.
#
#   bash scripts/check-latest.sh          # prints what changed against the lock, then tests
#
# Not part of CI (CI installs the lock and must be deterministic). Run it before a release,
# before refreshing the lock (bash scripts/lock.sh --upgrade), and weekly in a scheduled job.
# A failure names the upstream release to exclude in setup.cfg (e.g. filelock<4.3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$PY" -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install -q --upgrade pip
# torch stays pinned (constraints.txt) so the open torchvision requirement cannot pull a CUDA torch.
"$scratch/venv/bin/python" -m pip install -q -c constraints.txt ".[dev,ray]"  # the extras of the cpu lock
"$scratch/venv/bin/python" -m pip freeze --exclude-editable | sed 's/ @ .*//' > "$scratch/latest.txt"
echo "newest allowed versions that differ from locks/cpu.txt:"
"$scratch/venv/bin/python" - "$scratch/latest.txt" <<'PY' || true
import re, sys
lock = dict(re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)", open("locks/cpu.txt").read(), re.M))
lock = {k.lower().replace("_", "-"): v for k, v in lock.items()}
for line in open(sys.argv[1]):
    if "==" in line:
        name, ver = line.strip().split("==", 1)
        old = lock.get(name.lower().replace("_", "-"))
        if old != ver:
            print(f"  {name}: {old} -> {ver}")
PY
if ! "$scratch/venv/bin/python" -c "import torchvision" >/dev/null 2>&1; then
  "$scratch/venv/bin/python" -m pip uninstall -y -q torchvision
fi
"$scratch/venv/bin/mis-eval" demo --results-dir "$scratch/results" --output-path "$scratch/logs"
"$scratch/venv/bin/python" -m pytest -q -x -m "not slow and not browser and not vllm" -p no:cacheprovider
echo "drift check passed: the newest allowed versions work"
