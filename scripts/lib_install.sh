# Shared by scripts/install.sh and scripts/lock.sh (sourced, not run). Needs $PY (a Python >= 3.10).
#
# uv is pinned and hashed like everything else: locks/uv.txt (bash scripts/lock.sh uv) is installed
# with the pip that ships with Python (python -m venv) into a small tool venv, kept across installs
# under $MIS_EVAL_TOOLS (default ~/.cache/mis-eval/tools) and named after the hash of locks/uv.txt,
# so a new pin gets a new tool venv. --only-binary: where uv has no wheel, bootstrapping fails in
# seconds (no Rust build) and install.sh falls back to pip.

TORCH_INDEX=${MIS_EVAL_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

# Print the path of the pinned uv, installing it first when needed; status 1 when it cannot run here.
uv_tool() {
  local key root dir tmp
  key=$("$PY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:12])' locks/uv.txt)
  root=${MIS_EVAL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mis-eval/tools}
  dir="$root/uv-$key"
  if ! "$dir/bin/uv" --version >/dev/null 2>&1; then
    mkdir -p "$root" || return 1
    tmp=$(mktemp -d "$root/.uv-$key.XXXXXX") || return 1
    # the venv is built in a temporary folder and renamed, so two installs at once cannot see half of it
    if "$PY" -m venv "$tmp/venv" >"$tmp/log" 2>&1 \
      && "$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
        --no-deps --only-binary :all: -r locks/uv.txt >>"$tmp/log" 2>&1 \
      && "$tmp/venv/bin/uv" --version >/dev/null 2>&1; then
      if ! "$dir/bin/uv" --version >/dev/null 2>&1; then  # another install may have won the race: use its copy
        rm -rf "$dir"
        mv -T "$tmp/venv" "$dir" 2>/dev/null || true
      fi
      rm -rf "$tmp"
      # python -m venv writes absolute paths into the scripts; uv is a binary, so the rename is safe
      "$dir/bin/uv" --version >/dev/null 2>&1 || return 1
    else
      echo "could not install uv from locks/uv.txt:" >&2
      tail -n 5 "$tmp/log" >&2
      rm -rf "$tmp"
      return 1
    fi
  fi
  echo "$dir/bin/uv"
}

# pip's own package sources, read by the pip of the Python given as argument (its config files and PIP_* variables, as pip itself reads them), one
# uv argument a line: uv reads no pip configuration, so a wheel folder or mirror given to pip
# (here PIP_FIND_LINKS=/opt/wheels holds torch 2.13.0+cpu) reaches uv only this way. The default
# index (PyPI) is left implicit. Extra indexes get --index-strategy unsafe-best-match, pip's own
# rule (best version from any index): uv's default takes a package from the first index that
# has it, which fails on a partial mirror; hashes are checked either way.
pip_sources() {
  "${1:-$PY}" - <<'EOF' 2>/dev/null || true
from pip._internal.commands import create_command

o, _ = create_command("install").parse_args([])
for d in o.find_links:
    print("--find-links"); print(d)
if o.index_url and o.index_url.rstrip("/") != "https://pypi.org/simple":
    print("--index-url"); print(o.index_url)
for u in o.extra_index_urls:
    print("--extra-index-url"); print(u)
if o.extra_index_urls:
    print("--index-strategy"); print("unsafe-best-match")
EOF
}
