#!/usr/bin/env bash
# The main job, end to end, on the embedded defaults:
#   1. generate a georeferenced before/after GeoTIFF scene (synthetic, UTM, 0.5 m pixels) with known changes;
#   2. start the backend (`ccexpert serve`) on 127.0.0.1 with the shipped demo model;
#   3. run the QGIS plugin's Processing algorithm through `qgis_process` (plugin zip installed into a fresh profile):
#      one polygon per 384x384 chip with its caption, written to a GeoPackage;
#   4. write an HTML report with before/after thumbnails and print the changed tiles next to the generator's truth.
# Exits non-zero (and says why) when the backend cannot caption, when the algorithm fails, or when any tile ends in
# error or fewer tiles are captioned than the scene has chips under the nodata limit (scripts/demo_summary.py).
# Output: demo_output/ (changes.gpkg, report.html). The demo model is a synthetic-domain demo, not for real imagery.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

OUT="${OUT:-demo_output}"
SIZE="${SIZE:-2048}"
rm -rf "$OUT" && mkdir -p "$OUT"
export QT_QPA_PLATFORM=offscreen

echo "== 1/4 generating a ${SIZE}x${SIZE} GeoTIFF scene pair"
.venv/bin/ccexpert synth --scene --out "$OUT/scene" --size "$SIZE" --seed 7

echo "== 2/4 starting the backend on 127.0.0.1 (demo model)"
PORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/ccexpert serve --host 127.0.0.1 --port "$PORT" > "$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
ready=0
for _ in $(seq 1 180); do
  if .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then ready=1; break; fi
  # `ccexpert serve` exits (code 3) when the model cannot caption its start-up sample
  kill -0 $SERVER 2>/dev/null || { cat "$OUT/serve.log" >&2; echo "demo: FAILED: the backend stopped" >&2; exit 1; }
  sleep 1
done
[ "$ready" = 1 ] || { cat "$OUT/serve.log" >&2; echo "demo: FAILED: the backend is not ready after 180 s" >&2; exit 1; }
.venv/bin/python -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
  "http://127.0.0.1:$PORT/v1/info"

echo "== 3/4 QGIS: qgis_process run ccexpert:describe_changes"
.venv/bin/ccexpert package-plugin -o "$OUT/dist" > /dev/null
PROFILE="$OUT/qgis-profile"
mkdir -p "$PROFILE/profiles/default/python/plugins"
.venv/bin/python -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
  "$(ls "$OUT"/dist/*.zip | head -n 1)" "$PROFILE/profiles/default/python/plugins"
QGIS_PROCESS=/usr/bin/qgis_process.bin
[ -x "$QGIS_PROCESS" ] || QGIS_PROCESS=qgis_process
export QGIS_CUSTOM_CONFIG_PATH="$PWD/$PROFILE"
"$QGIS_PROCESS" plugins enable ccexpert_changes > /dev/null
"$QGIS_PROCESS" run ccexpert:describe_changes -- \
  "BEFORE=$OUT/scene/before.tif" "AFTER=$OUT/scene/after.tif" \
  "BACKEND_URL=http://127.0.0.1:$PORT" "OUTPUT=$OUT/changes.gpkg"

echo "== 4/4 report"
.venv/bin/ccexpert report "$OUT/changes.gpkg" -o "$OUT/report.html"
.venv/bin/python scripts/demo_summary.py "$OUT/changes.gpkg" "$OUT/scene/changes.json"
echo "done: open $OUT/report.html, or load $OUT/changes.gpkg in QGIS"
