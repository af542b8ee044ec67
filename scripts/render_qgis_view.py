"""Screenshot of what an analyst sees after a run, in the QGIS desktop itself (run under a virtual screen by
scripts/render_pictures.sh): the before/after rasters, the result layer with its stored style and legend, named
and made active as the plugin does after a run, the plugin's message-bar summary, and the map tip of a changed
tile under the mouse.

Usage (QGIS runs this file after start-up):
  xvfb-run -s "-screen 0 1400x900x24" qgis --nologo --noversioncheck --code scripts/render_qgis_view.py
with CCEXPERT_VIEW="CHANGES.gpkg BEFORE.tif AFTER.tif OUT.png" and the plugin folder on PYTHONPATH.
"""

from __future__ import annotations

import os
from datetime import datetime

from ccexpert_changes.core.fields import LAYER_NAME
from ccexpert_changes.core.output_names import result_layer_name
from ccexpert_changes.dialog import push_summary
from ccexpert_changes.layer_style import enable_map_tips, make_active, move_to_group
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import QPoint, QTimer
from qgis.PyQt.QtTest import QTest
from qgis.utils import iface

gpkg, before, after, out = os.environ["CCEXPERT_VIEW"].split()
project = QgsProject.instance()
project.addMapLayer(QgsRasterLayer(before, "before", "gdal"))
project.addMapLayer(QgsRasterLayer(after, "after", "gdal"))
layer = QgsVectorLayer(f"{gpkg}|layername={LAYER_NAME}", result_layer_name(after, datetime.now()), "ogr")
project.addMapLayer(layer)  # opens with the style stored in the GeoPackage
move_to_group(layer, project)
enable_map_tips()
make_active(layer)
counts = {"CAPTIONED": 0, "CHANGED": 0, "ERRORS": 0, "SKIPPED_NODATA": 0, "DEMO": 0}
for feature in layer.getFeatures():
    status = feature["status"]
    counts["CAPTIONED"] += status == "ok"
    counts["CHANGED"] += status == "ok" and feature["changed"] == 1
    counts["ERRORS"] += status == "error"
    counts["SKIPPED_NODATA"] += status == "skipped_nodata"
    counts["DEMO"] |= "demo" in str(feature["model"] or "")
push_summary(iface.messageBar(), counts)
iface.mainWindow().setGeometry(0, 0, 1400, 900)  # no window manager under Xvfb to maximize it
canvas = iface.mapCanvas()
canvas.setExtent(layer.extent())
canvas.refresh()


def hover_changed_tile() -> None:
    """Rest the mouse on a changed tile: its map tip shows, as the result is the active layer."""
    changed = next(f for f in layer.getFeatures() if f["changed"] == 1)
    point = canvas.mapSettings().mapToPixel().transform(changed.geometry().centroid().asPoint())
    QTest.mouseMove(canvas.viewport(), QPoint(int(point.x()), int(point.y())))


def show_kinds_of_change() -> None:
    """The legend as an analyst opens it: the result's kinds of change (under Changed) unfolded, the rasters' bands
    folded away."""
    view = iface.layerTreeView()
    for node in project.layerTreeRoot().findLayers():
        node.setExpanded(node.layerId() == layer.id())
    index = view.node2index(project.layerTreeRoot().findLayer(layer.id()))  # in the view's (proxy) model
    view.expandRecursively(index)
    model = view.model()
    for row in range(model.rowCount(index)):  # legend nodes with children: "Changed" and its kinds of change
        view.expand(model.index(row, 0, index))


def grab() -> None:
    iface.mainWindow().grab().save(out)
    QgsApplication.exit(0)


QTimer.singleShot(4000, show_kinds_of_change)
QTimer.singleShot(5000, hover_changed_tile)
QTimer.singleShot(9000, grab)
