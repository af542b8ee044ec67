#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine; safe to run again (idempotent).
#   - Debian packages: QGIS 3.22 LTR (python3-qgis, qgis_process), python3-venv, a Java runtime for METEOR
#   - .venv       : the backend/training stack (torch==2.13.0 CPU, transformers, DeepSpeed, FastAPI, rasterio ...)
#   - .venv-qgis  : QGIS' own Python (/usr/bin/python3) + pytest, pytest-qgis, and the plugin linters
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_packages=(python3-qgis qgis-common qgis-providers qgis python3-venv python3-pip)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v java >/dev/null 2>&1; then
  echo "setup: java not found (METEOR needs it): installing default-jre-headless"
  missing+=(default-jre-headless)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
java -version >/dev/null 2>&1 || { echo "setup: java is still missing; METEOR cannot run" >&2; exit 1; }

# pip's output goes to a log that is printed only when the install fails
quiet_pip() {
  local python="$1"; shift
  local log; log="$(mktemp)"
  if ! "$python" -m pip install -q "$@" > "$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "setup: pip install failed" >&2; return 1
  fi
  rm -f "$log"
}

PYTHON="${PYTHON:-python3}"
stamp_backend=".venv/.ccexpert-setup-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp_backend" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  quiet_pip .venv/bin/python --upgrade pip
  # torch is pinned in pyproject.toml to the CPU wheel (2.13.0); an unpinned torch would pull CUDA.
  quiet_pip .venv/bin/python -e ".[serve,train,dev]"
  rm -f .venv/.ccexpert-setup-* && touch "$stamp_backend"
fi

stamp_qgis=".venv-qgis/.ccexpert-setup-2"
if [ ! -f "$stamp_qgis" ]; then
  [ -x .venv-qgis/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv-qgis
  quiet_pip .venv-qgis/bin/python "pytest>=8" "pytest-qgis==5.0.2" "pytest-timeout>=2.3" \
    "flake8>=7" "bandit>=1.7" "detect-secrets>=1.5"
  rm -f .venv-qgis/.ccexpert-setup-* && touch "$stamp_qgis"
fi
echo "setup: ok (.venv: $(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'); QGIS $(/usr/bin/python3 -c 'from qgis.core import Qgis; print(Qgis.QGIS_VERSION)' 2>/dev/null))"
