#!/usr/bin/env bash
# Installs what is missing (exactly the locks), then runs every test: the lock check, lint, backend/training/core
# tests (.venv), plugin tests (real QGIS 3.22, 3.40 and 3.44: scripts/qgis_matrix.sh), and the same model/service
# tests on the newest releases pyproject.toml admits (scripts/check_newest.sh). Exits non-zero when any part fails.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export QT_QPA_PLATFORM=offscreen
export PYTHONDONTWRITEBYTECODE=1
status=0

echo "== versions (.venv, from requirements/lock.txt)"
.venv/bin/python -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "| transformers",
      transformers.__version__, "| tokenizers", tokenizers.__version__)' || status=1

echo "== lock matches pyproject.toml (pins within their ranges)"
.venv/bin/python scripts/check_lock.py || status=1

echo "== ruff"
.venv/bin/ruff check backend training qgis_plugin tests bench scripts || status=1
.venv/bin/ruff format --check backend training qgis_plugin tests bench scripts || status=1

echo "== mypy ([tool.mypy] in pyproject.toml)"
typed=(qgis_plugin/ccexpert_changes/core backend/ccexpert)
[ -d training/ccexpert_training ] && typed+=(training/ccexpert_training)
.venv/bin/python -m mypy "${typed[@]}" || status=1

echo "== backend, training, core and tooling tests (.venv)"
.venv/bin/python -m pytest tests/backend tests/training tests/core tests/tooling -q -rs || status=1

# 3.22 on this machine (.venv-qgis), 3.40 LTR and 3.44 LTR in Debian root folders cached in /var/cache/ccexpert-qgis
# (built on the first run: about 8 minutes each, in parallel with nothing else). CCEXPERT_QGIS_SUITES picks fewer.
echo "== QGIS plugin tests on every QGIS release tested (scripts/qgis_matrix.sh ${CCEXPERT_QGIS_SUITES:-bookworm trixie forky})"
read -ra qgis_suites <<< "${CCEXPERT_QGIS_SUITES:-bookworm trixie forky}"
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/qgis_matrix.sh "${qgis_suites[@]}" || status=1
else
  sudo -E bash scripts/qgis_matrix.sh "${qgis_suites[@]}" || status=1
fi

echo "== newest releases pyproject.toml admits (scripts/check_newest.sh)"
bash scripts/check_newest.sh || status=1

exit $status
