#!/usr/bin/env bash
# Regenerates the pictures in docs/images/ that show what an analyst sees:
#   docs/images/report.png  the HTML report of the demo scene (headless Chromium screenshot of `ccexpert report`)
#   docs/images/map.png     the demo scene's output opened as it is (its own stored style) over the after raster,
#                           rendered by QGIS (scripts/render_map.py, QgsMapRendererParallelJob)
# The scene is the demo's (2048 px, seed 7), captioned in-process by the shipped demo model.
# Needs the project venv (bash scripts/setup.sh) and Debian's chromium (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null 2>&1 || {
  echo "render_pictures: installing Debian's chromium"
  ${SUDO:-$( [ "$(id -u)" -ne 0 ] && echo sudo )} apt-get install -y -qq --no-install-recommends chromium >/dev/null
}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
.venv/bin/ccexpert synth --scene --out "$work/scene" --size 2048 --seed 7 > /dev/null
.venv/bin/ccexpert describe "$work/scene/before.tif" "$work/scene/after.tif" -o "$work/changes.gpkg" -q
.venv/bin/ccexpert report "$work/changes.gpkg" -o "$work/report.html"
mkdir -p docs/images
# flags for a closed network: no background fetches, a fresh profile
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$work/chrome" --hide-scrollbars \
  --window-size=1100,2300 --screenshot="$work/report.png" "file://$work/report.html" > /dev/null 2>&1
QT_QPA_PLATFORM=offscreen /usr/bin/python3 scripts/render_map.py "$work/changes.gpkg" "$work/scene/after.tif" \
  "$work/map.png" --width 1100 | grep "render_map: layer style"
# 256-colour PNGs keep the repository small
.venv/bin/python - "$work" docs/images <<'PY'
import sys
from pathlib import Path
from PIL import Image
for name in ("report.png", "map.png"):
    Image.open(Path(sys.argv[1]) / name).convert("RGB").quantize(256).save(Path(sys.argv[2]) / name, optimize=True)
PY
echo "render_pictures: wrote docs/images/report.png and docs/images/map.png"
