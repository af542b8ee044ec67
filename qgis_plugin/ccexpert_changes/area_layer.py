"""Layer ``change_areas`` of the plugin's output (issue 27): ``core.areas`` groups the changed tiles, QGIS dissolves
each group's tile polygons (``QgsGeometry.unaryUnion``), and ``QgsVectorFileWriter`` writes the layer into the same
GeoPackage, replacing the one an earlier run wrote (the areas always cover every tile of the output)."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsVectorFileWriter,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import NULL

from .about import tr
from .compat import FIELD_TYPES
from .core.areas import AREA_FIELDS, AREAS_LAYER_NAME, areas_style, group_areas
from .core.fields import LAYER_NAME
from .core.grid import ChipGrid, parse_tile_id
from .core.style_table import write_default_style

_READ = ("tile_id", "row", "col", "status", "changed", "change_kind", "facts")


class AreaLayerError(RuntimeError):
    """The change areas could not be written; the tiles are untouched."""


def _value(value):
    return None if value == NULL else value


def write_change_areas(path: str, grid: ChipGrid | None = None) -> int:
    """(Re)write layer ``change_areas`` of the output GeoPackage at ``path`` from its tiles; the number of areas.
    ``grid``: the run's chip grid, so that objects in the overlap of two chips are counted once."""
    tiles = QgsVectorLayer(f"{path}|layername={LAYER_NAME}", "tiles", "ogr")
    if not tiles.isValid():
        raise AreaLayerError(tr("{0} has no readable layer {1}").format(path, LAYER_NAME))
    records, geometries = [], {}
    for feature in tiles.getFeatures():
        record = {name: _value(feature[name]) for name in _READ}
        box = feature.geometry().boundingBox()
        record["bounds"] = (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum())
        if grid is not None:
            row, col, _ = parse_tile_id(record["tile_id"])
            record["chip_bounds"] = grid.chip(row, col).bounds
        records.append(record)
        geometries[record["tile_id"]] = QgsGeometry(feature.geometry())
    crs = tiles.crs()
    del tiles  # the GeoPackage is written next: no reader of ours keeps it open
    fields = QgsFields()
    for name, kind in AREA_FIELDS:
        fields.append(QgsField(name, FIELD_TYPES[kind]))
    memory = QgsVectorLayer(f"MultiPolygon?crs={crs.authid() or crs.toWkt()}", AREAS_LAYER_NAME, "memory")
    memory.setCrs(crs)
    provider = memory.dataProvider()
    provider.addAttributes(fields.toList())
    memory.updateFields()
    features = []
    for area in group_areas(records):
        geometry = QgsGeometry.unaryUnion([geometries[tile_id] for tile_id in area.tile_ids])
        geometry.convertToMultiType()
        feature = QgsFeature(memory.fields())
        feature.setGeometry(geometry)
        for name, value in area.record().items():
            feature[name] = value
        features.append(feature)
    provider.addFeatures(features)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = AREAS_LAYER_NAME
    options.actionOnExistingFile = QgsVectorFileWriter.ActionOnExistingFile.CreateOrOverwriteLayer
    error, message, _, _ = QgsVectorFileWriter.writeAsVectorFormatV3(
        memory, path, QgsCoordinateTransformContext(), options
    )
    if error != QgsVectorFileWriter.WriterError.NoError:
        raise AreaLayerError(tr("Could not write the change areas into {0}: {1}").format(path, message))
    write_default_style(path, AREAS_LAYER_NAME, areas_style())
    return len(features)
