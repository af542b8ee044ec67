#!/usr/bin/env bash
# The prepared GPU benchmark (issue 29): 0.5B and 7B presets, random weights, bf16; pairs/s vs batch size, share of
# the FLOP ceiling, peak memory, preparation vs generate time per batch, the HTTP service on the same GPU.
# Writes ${OUT:-bench/out}/gpu.json and gpu.txt. Stops after 8 minutes. `--tiny`: CPU, tiny preset (what CI runs).
#   bash bench/gpu.sh            # GPU machine, from the repository root
#   bash bench/gpu.sh --tiny     # CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export PYTHONPATH="$PWD/backend:$PWD/training:$PWD/qgis_plugin${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 480 "$PY" bench/bench_gpu.py --out "${OUT:-bench/out}" "$@"
