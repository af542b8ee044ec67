#!/usr/bin/env bash
# How upstream drift reaches us before users do: a throw-away venv with the NEWEST releases pyproject.toml admits
# (no lock: what `pip install ccexpert[serve]` gives a user today), then the model, engine and service tests and one
# `ccexpert caption` of a generated pair. scripts/test.sh runs it after the locked suite.
#
#   bash scripts/check_newest.sh                         # the newest of everything pyproject.toml admits
#   bash scripts/check_newest.sh "transformers==5.23.0"  # the same checks with a chosen release (e.g. the oldest)
#
# When a new release breaks us and cannot be fixed at once, cap its range in pyproject.toml with the reason in a
# comment, and refresh the lock (scripts/lock.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
log="$work/pip.log"
python3 -m venv "$venv"
# --upgrade-strategy eager: every dependency at the newest release the ranges admit, as a fresh `pip install` does
if ! "$venv/bin/python" -m pip install --upgrade --upgrade-strategy eager -e ".[serve,dev]" "$@" > "$log" 2>&1; then
  cat "$log" >&2; echo "check_newest: pip could not install the newest releases pyproject.toml admits" >&2; exit 1
fi
"$venv/bin/python" -c 'import torch, transformers, tokenizers, huggingface_hub, fastapi, pydantic
print("check_newest: torch", torch.__version__, "| transformers", transformers.__version__, "| tokenizers",
      tokenizers.__version__, "| huggingface_hub", huggingface_hub.__version__, "| fastapi", fastapi.__version__,
      "| pydantic", pydantic.__version__)'

"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/backend/test_modeling.py tests/backend/test_dim.py \
  tests/backend/test_engine.py tests/backend/test_processing_ccexpert.py tests/backend/test_checkpoints.py \
  tests/backend/test_service.py tests/backend/test_service_startup.py

"$venv/bin/python" -c 'import sys
from PIL import Image
from ccexpert.samples import sample_pair
before, after = sample_pair(384)
Image.fromarray(before).save(sys.argv[1]); Image.fromarray(after).save(sys.argv[2])' "$work/before.png" "$work/after.png"
caption="$("$venv/bin/ccexpert" caption "$work/before.png" "$work/after.png" 2>"$work/caption.log")" \
  || { cat "$work/caption.log" >&2; echo "check_newest: ccexpert caption failed" >&2; exit 1; }
[ -n "$caption" ] || { echo "check_newest: ccexpert caption printed no caption" >&2; exit 1; }
echo "check_newest: ok; ccexpert caption (demo model, built-in sample pair): $caption"
