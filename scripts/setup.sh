#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine; safe to run again (idempotent).
#   - Debian packages: QGIS 3.22 LTR (python3-qgis, qgis_process), python3-venv, a Java runtime for METEOR
#   - .venv       : exactly requirements/lock.txt (torch 2.13.0 CPU, transformers, DeepSpeed, FastAPI, rasterio ...)
#                   with hashes, then this project in editable mode without resolving anything
#   - .venv-qgis  : QGIS' own Python (/usr/bin/python3) + exactly requirements/qgis-lock.txt (pytest, pytest-qgis, linters)
# Each venv is stamped with the hash of its lock: a changed lock rebuilds it from scratch, so what is installed is
# always what the lock says (a changed pyproject.toml only reinstalls the project). Refresh the locks with
# `bash scripts/lock.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_packages=(python3-qgis qgis-common qgis-providers qgis python3-venv python3-pip qttools5-dev-tools)
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
  if ! "$python" -m pip "$@" > "$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "setup: pip $1 failed" >&2; return 1
  fi
  rm -f "$log"
}

# builds VENV from LOCK from scratch and stamps it; extra args go to `python -m venv`. A failed build stops setup
# before the stamp is written, so the next run starts over.
build_venv() {
  local venv="$1" python="$2" stamp="$3" lock="$4"; shift 4
  if [ -d "$venv" ]; then echo "setup: $venv is not built from the current lock: rebuilding it"; rm -rf "$venv"; fi
  echo "setup: building $venv from $lock"
  "$python" -m venv "$@" "$venv"
  # --require-hashes: every package pinned to one version and checked against the lock's hashes; pip fails if the
  # lock misses a dependency. torch comes from the CPU wheel (2.13.0+cpu) that pip finds on this machine.
  quiet_pip "$venv/bin/python" install --require-hashes -r "$lock"
  touch "$venv/.ccexpert-lock-$stamp"
}

# The lock must agree with pyproject.toml before anything is installed from it.
python3 scripts/check_lock.py

PYTHON="${PYTHON:-python3}"
stamp_backend="$(sha256sum requirements/lock.txt | cut -c1-16)"
if [ ! -f ".venv/.ccexpert-lock-$stamp_backend" ]; then
  build_venv .venv "$PYTHON" "$stamp_backend" requirements/lock.txt
fi
stamp_project="$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f ".venv/.ccexpert-project-$stamp_project" ]; then
  # the project itself: no resolution (everything is in the lock), the locked setuptools as build backend
  quiet_pip .venv/bin/python install --no-deps --no-build-isolation -e .
  quiet_pip .venv/bin/python check
  rm -f .venv/.ccexpert-project-* && touch ".venv/.ccexpert-project-$stamp_project"
fi

stamp_qgis="$(sha256sum requirements/qgis-lock.txt | cut -c1-16)"
if [ ! -f ".venv-qgis/.ccexpert-lock-$stamp_qgis" ]; then
  build_venv .venv-qgis /usr/bin/python3 "$stamp_qgis" requirements/qgis-lock.txt --system-site-packages
fi
echo "setup: ok (.venv: $(.venv/bin/python -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__)'); QGIS $(/usr/bin/python3 -c 'from qgis.core import Qgis; print(Qgis.QGIS_VERSION)' 2>/dev/null))"
