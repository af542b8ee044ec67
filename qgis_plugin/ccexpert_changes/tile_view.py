"""Layer action "Show before/after" on a change-captions tile: the chip the model saw, before and after side by side,
read again from the rasters named in the layer's run metadata with the run's bands, grid and 8-bit stretch (the
plugin's own GDAL reader: nothing QGIS does not ship). Offered on change-captions layers only (attribute table,
Identify results, feature context menus)."""

from __future__ import annotations

import json

import numpy as np
from osgeo import gdal
from qgis.core import QgsMapLayer, QgsVectorLayer
from qgis.gui import QgsMapLayerAction
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QImage, QPixmap
from qgis.PyQt.QtWidgets import QDialog, QGridLayout, QLabel, QMessageBox

from .about import tr
from .compat import VECTOR_LAYER, single_feature_target
from .core.fields import LAYER_NAME, RUN_METADATA_TAG
from .core.grid import ChipGrid, parse_tile_id
from .core.stretch import Stretch
from .reader import PairReader, RasterInputError, open_raster

SHOWN_SIZE = 384  # screen pixels per date (the chip is resampled to this)


def gpkg_path(layer: QgsMapLayer | None) -> str | None:
    """The GeoPackage of a change-captions layer, or None for any other layer."""
    if not isinstance(layer, QgsVectorLayer) or layer.providerType() != "ogr":
        return None
    path, _, options = layer.source().partition("|")
    if not path.lower().endswith(".gpkg") or (options and f"layername={LAYER_NAME}" not in options):
        return None
    return path if "tile_id" in layer.fields().names() else None


def run_metadata_of(path: str) -> dict:
    """The run parameters stored with the layer; ValueError when there are none."""
    ds = gdal.OpenEx(path, gdal.OF_VECTOR)
    layer = ds.GetLayerByName(LAYER_NAME) if ds is not None else None
    text = layer.GetMetadataItem(RUN_METADATA_TAG) if layer is not None else None
    ds = None
    if not text:
        raise ValueError(tr("{0} holds no run parameters (not made by Describe changes)").format(path))
    return json.loads(text)


def tile_images(path: str, tile_id: str, size: int = SHOWN_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(before, after) HxWx3 uint8 of the tile's chip as the run read it; ValueError naming what is wrong."""
    meta = run_metadata_of(path)
    try:
        before = open_raster(meta["before"], "BEFORE")
        after = open_raster(meta["after"], "AFTER")
        bands = [int(b) for b in str(meta.get("bands") or "1,2,3").split(",")]
        reader = PairReader(before, after, bands, size, log=lambda _text: None)
        grid = ChipGrid(reader.grid, int(meta["chip_size"]), int(meta.get("overlap", 0)))
    except (RasterInputError, KeyError, ValueError) as exc:
        raise ValueError(tr("The rasters of this layer cannot be read: {0}").format(exc)) from exc
    if grid.grid_hash != meta.get("grid_hash"):
        raise ValueError(tr("The rasters at {0} are not the ones this layer was made from").format(meta["before"]))
    stretch = meta.get("stretch") or {}
    if stretch:
        reader.stretch = Stretch(tuple(stretch["lo"]), tuple(stretch["hi"]), bool(stretch.get("passthrough")))
    row, col, _ = parse_tile_id(tile_id)
    images = reader.read_chip(grid.chip(row, col))
    return (
        np.ascontiguousarray(images.before.transpose(1, 2, 0)),
        np.ascontiguousarray(images.after.transpose(1, 2, 0)),
    )


def _pixmap(rgb: np.ndarray) -> QPixmap:
    height, width, _ = rgb.shape
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())  # the copy owns its pixels; the array may go


class BeforeAfterDialog(QDialog):
    """The two dates of one tile side by side, titled by its row and column, with its caption."""

    def __init__(self, before: np.ndarray, after: np.ndarray, title: str, caption: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        grid = QGridLayout(self)
        for column, (name, rgb) in enumerate(((tr("Before"), before), (tr("After"), after))):
            heading = QLabel(name)
            heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture = QLabel()
            picture.setPixmap(_pixmap(rgb))
            grid.addWidget(heading, 0, column)
            grid.addWidget(picture, 1, column)
        text = QLabel(caption)
        text.setWordWrap(True)
        grid.addWidget(text, 2, 0, 1, 2)
        self.caption = text


class ShowBeforeAfterAction(QgsMapLayerAction):
    """Offered on change-captions layers only; opens :class:`BeforeAfterDialog` for the chosen tile."""

    def __init__(self, parent=None):
        super().__init__(tr("Show before/after"), parent, VECTOR_LAYER, single_feature_target())
        self.triggeredForFeature.connect(self.show_tile)
        self.dialogs: list[BeforeAfterDialog] = []  # kept alive while shown (non-modal)

    def canRunUsingLayer(self, layer) -> bool:  # QGIS API name
        return gpkg_path(layer) is not None

    def dialog_for(self, layer, feature, parent=None) -> BeforeAfterDialog:
        """The dialog for ``feature`` of ``layer`` (ValueError when its imagery cannot be read)."""
        path = gpkg_path(layer)
        if path is None:
            raise ValueError(tr("{0} is not a change-captions layer").format(layer.name()))
        before, after = tile_images(path, str(feature["tile_id"]))
        title = tr("Row {0}, column {1}").format(feature["row"], feature["col"])
        caption = feature["caption"] or feature["error"] or ""
        return BeforeAfterDialog(before, after, title, str(caption or ""), parent)

    def show_tile(self, layer, feature) -> None:
        parent = self.parent()
        try:
            dialog = self.dialog_for(layer, feature, parent)
        except ValueError as exc:
            QMessageBox.warning(parent, tr("Show before/after"), str(exc))
            return
        self.dialogs = [d for d in self.dialogs if d.isVisible()] + [dialog]
        dialog.show()
