#!/usr/bin/env bash
# Installs what is missing (exactly the locks), then runs every test: the lock check, lint, backend/training/core
# tests (.venv), plugin tests (real QGIS), and the same model/service tests on the newest releases pyproject.toml
# admits (scripts/check_newest.sh). Exits non-zero when any part fails.
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
typed=(qgis_plugin/ccexpert_changes/core backend/ccexpert/service)
[ -d training/ccexpert_training/stage ] && typed+=(training/ccexpert_training/stage)
.venv/bin/python -m mypy "${typed[@]}" || status=1

echo "== backend, training, core and tooling tests (.venv)"
.venv/bin/python -m pytest tests/backend tests/training tests/core tests/tooling -q -rs || status=1

echo "== QGIS plugin tests (.venv-qgis, QGIS $(/usr/bin/python3 -c 'from qgis.core import Qgis; print(Qgis.QGIS_VERSION)'))"
.venv-qgis/bin/python -m pytest -c tests/plugin/pytest.ini tests/plugin -q -rs || status=1

echo "== newest releases pyproject.toml admits (scripts/check_newest.sh)"
bash scripts/check_newest.sh || status=1

exit $status
