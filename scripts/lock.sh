#!/usr/bin/env bash
# Refreshes the locks from pyproject.toml and requirements/*.in: the newest releases their ranges admit today,
# every package pinned with its hashes (pip-tools' pip-compile, for Python 3.11 on Linux x86_64, the project's
# machines). torch resolves to the 2.13.0 CPU wheel pip finds on this machine (never a CUDA build).
#   requirements/lock.txt       <- pyproject.toml, every extra + requirements/build.in        (.venv)
#   requirements/qgis-lock.txt  <- requirements/qgis-tools.in                                 (.venv-qgis)
# Then run `bash scripts/test.sh` (it rebuilds the venvs from the new locks) and commit pyproject.toml and requirements/.
set -euo pipefail
cd "$(dirname "$0")/.."

PIP_TOOLS_VERSION=7.7.0
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q "pip-tools==$PIP_TOOLS_VERSION" > "$tools/log" 2>&1 \
  || { cat "$tools/log" >&2; exit 1; }

compile() {
  local out="$1"; shift
  # --upgrade: ignore the old lock, take the newest releases; --no-emit-*: no machine-specific index lines
  "$tools/venv/bin/pip-compile" --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-find-links -o "$out" "$@" > "$tools/log" 2>&1 \
    || { cat "$tools/log" >&2; echo "lock: pip-compile failed for $out" >&2; exit 1; }
  printf '# inputs-sha256: %s\n' "$(python3 scripts/check_lock.py --print-digest "$out")" >> "$out"
}

compile requirements/lock.txt --all-extras pyproject.toml requirements/build.in
compile requirements/qgis-lock.txt requirements/qgis-tools.in
python3 scripts/check_lock.py
grep -E "^(torch|transformers|tokenizers|deepspeed)==" requirements/lock.txt | sed 's/ \\$//; s/^/lock: /'
