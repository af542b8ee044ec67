"""Render a describe/plugin output as an analyst first sees it: the GeoPackage opened as it is (its own default
style, no plugin), over the after raster, with QGIS' map renderer (QgsMapRendererParallelJob), to a PNG.

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 scripts/render_map.py OUT.gpkg AFTER.tif map.png [--width 1400]
"""

from __future__ import annotations

import argparse
import os
import sys

from qgis.core import (
    QgsApplication,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gpkg")
    parser.add_argument("raster")
    parser.add_argument("png")
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    app = QgsApplication([], False)
    app.initQgis()
    # no exitQgis: QGIS 3.22 can crash tearing down a headless app; the process ends with os._exit
    tiles = QgsVectorLayer(f"{args.gpkg}|layername=change_captions", "Change captions", "ogr")
    raster = QgsRasterLayer(args.raster, "after")
    if not tiles.isValid() or not raster.isValid():
        print(f"render_map: cannot open {args.gpkg if not tiles.isValid() else args.raster}", file=sys.stderr)
        return 2
    aliases = sum(1 for i in range(tiles.fields().count()) if tiles.attributeAlias(i))
    print(
        f"render_map: layer style {tiles.renderer().type()}, labels {tiles.labelsEnabled()}, "
        f"map tip {'set' if tiles.mapTipTemplate() else 'none'}, field aliases {aliases}, "
        f"title {tiles.metadata().title() or 'none'!r}"
    )
    settings = QgsMapSettings()
    settings.setLayers([tiles, raster])  # top first
    settings.setDestinationCrs(raster.crs())
    extent = raster.extent()
    settings.setExtent(extent)
    height = round(args.width * extent.height() / extent.width())
    settings.setOutputSize(QSize(args.width, height))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    if not job.renderedImage().save(args.png, "PNG"):
        print(f"render_map: cannot write {args.png}", file=sys.stderr)
        return 1
    print(f"render_map: wrote {args.png} ({args.width}x{height})", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip the interpreter's teardown of QGIS objects (it can crash); the PNG is written by now
