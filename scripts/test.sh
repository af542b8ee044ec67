#!/usr/bin/env bash
# Installs what is missing, then runs every test: lint, backend/training/core tests (.venv), plugin tests (real QGIS).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export QT_QPA_PLATFORM=offscreen
export PYTHONDONTWRITEBYTECODE=1
status=0

echo "== ruff"
.venv/bin/ruff check backend training qgis_plugin tests bench || status=1

echo "== backend, training and core tests (.venv)"
.venv/bin/python -m pytest tests/backend tests/training tests/core -q -rs || status=1

echo "== QGIS plugin tests (.venv-qgis, QGIS $(/usr/bin/python3 -c 'from qgis.core import Qgis; print(Qgis.QGIS_VERSION)'))"
.venv-qgis/bin/python -m pytest -c tests/plugin/pytest.ini tests/plugin -q -rs || status=1

exit $status
