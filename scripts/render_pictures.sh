#!/usr/bin/env bash
# Regenerates the pictures in docs/images/ that show what an analyst sees:
#   docs/images/report.png  the HTML report of the demo scene (headless Chromium screenshot of `ccexpert report`)
#   docs/images/map.png     the demo scene's output opened as it is (its own stored style) over the after raster,
#                           rendered by QGIS (scripts/render_map.py, QgsMapRendererParallelJob)
#   docs/images/qgis_view.png  the QGIS desktop after a run (scripts/render_qgis_view.py under Xvfb): the layer named,
#                           styled and active, its legend, the message-bar summary and a map tip
#   docs/images/dialog.png  the Describe changes dialog with two rasters of the same name (tests/plugin/dialog_check.py
#                           under Xvfb): file path and date under Before and After
# The scene is the demo's (2048 px, seed 7), captioned in-process by the shipped demo model.
# Needs the project venv (bash scripts/setup.sh), Debian's chromium and xvfb (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null 2>&1 || {
  echo "render_pictures: installing Debian's chromium"
  ${SUDO:-$( [ "$(id -u)" -ne 0 ] && echo sudo )} apt-get install -y -qq --no-install-recommends chromium >/dev/null
}
command -v xvfb-run >/dev/null 2>&1 || {
  echo "render_pictures: installing Debian's xvfb"
  ${SUDO:-$( [ "$(id -u)" -ne 0 ] && echo sudo )} apt-get install -y -qq --no-install-recommends xvfb >/dev/null
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
# the QGIS desktop and the dialog, each in a fresh profile on a virtual screen
screen=(-a -s "-screen 0 1400x900x24")
CCEXPERT_VIEW="$work/changes.gpkg $work/scene/before.tif $work/scene/after.tif $work/qgis_view.png" \
  PYTHONPATH="$PWD/qgis_plugin" HOME="$work/home" QGIS_CUSTOM_CONFIG_PATH="$work/qgis-view" \
  xvfb-run "${screen[@]}" qgis --nologo --noversioncheck --code scripts/render_qgis_view.py > /dev/null 2>&1
HOME="$work/home" QGIS_CUSTOM_CONFIG_PATH="$work/qgis-dialog" \
  xvfb-run "${screen[@]}" /usr/bin/python3 tests/plugin/dialog_check.py "$work/dialog" "$work/dialog.png" > /dev/null
# 256-colour PNGs keep the repository small
.venv/bin/python - "$work" docs/images <<'PY'
import sys
from pathlib import Path
from PIL import Image
for name in ("report.png", "map.png", "qgis_view.png", "dialog.png"):
    Image.open(Path(sys.argv[1]) / name).convert("RGB").quantize(256).save(Path(sys.argv[2]) / name, optimize=True)
PY
echo "render_pictures: wrote docs/images/report.png, map.png, qgis_view.png and dialog.png"
