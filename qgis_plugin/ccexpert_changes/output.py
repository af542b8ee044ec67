"""Incremental GeoPackage output written with OGR.

Each batch of tiles is one SQLite transaction, so a cancel or a crash keeps every finished batch and the
file stays valid. RESUME reads the tile ids already ``ok`` and skips them; any other row of a tile that is
redone is deleted first, so a tile is never in the layer twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from osgeo import ogr, osr

from .about import tr
from .core.fields import FIELD_NAMES, FIELDS, LAYER_NAME, RUN_METADATA_TAG, STATUS_OK
from .core.grid import Bounds, parse_tile_id

_OGR_TYPES = {"str": ogr.OFTString, "int": ogr.OFTInteger, "real": ogr.OFTReal}


class OutputError(ValueError):
    """The OUTPUT file cannot be used; the message says why and what to do."""


class TileWriter:
    """``change_captions`` layer of a GeoPackage at ``path`` (created, overwritten or resumed)."""

    def __init__(self, path: str, srs_wkt: str, grid_hash: str, resume: bool,
                 metadata: Mapping[str, Any] | None = None):
        self.path = path
        self.done: set[str] = set()
        self._stale: dict[str, list[int]] = {}  # tile id -> fids of rows not ok, replaced when the tile is redone
        srs = osr.SpatialReference()
        srs.ImportFromWkt(srs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        driver = ogr.GetDriverByName("GPKG")
        self.ds = None
        if os.path.exists(path):
            if resume:
                self.ds = ogr.Open(path, 1)
                if self.ds is None:
                    raise OutputError(tr("RESUME: {0} is not a GeoPackage that can be opened for writing").format(path))
            else:
                driver.DeleteDataSource(path)
                if os.path.exists(path):
                    os.remove(path)
        if self.ds is None:
            self.ds = driver.CreateDataSource(path)
            if self.ds is None:
                raise OutputError(tr("Cannot create the GeoPackage {0}").format(path))
        self.layer = self.ds.GetLayerByName(LAYER_NAME)
        if self.layer is None:
            self.layer = self.ds.CreateLayer(LAYER_NAME, srs, ogr.wkbPolygon, options=["SPATIAL_INDEX=YES"])
            for name, kind in FIELDS:
                self.layer.CreateField(ogr.FieldDefn(name, _OGR_TYPES[kind]))
            if metadata is not None:  # the run's parameters, for `ccexpert report` (core.fields.run_metadata)
                self.layer.SetMetadataItem(RUN_METADATA_TAG, json.dumps(dict(metadata)))
        else:
            self._check_resumable(grid_hash)
        self._defn = self.layer.GetLayerDefn()

    def _check_resumable(self, grid_hash: str) -> None:
        defn = self.layer.GetLayerDefn()
        names = {defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())}
        missing = [n for n in FIELD_NAMES if n not in names]
        if missing:
            raise OutputError(
                tr("RESUME: layer {0} in {1} lacks the fields {2}; choose another OUTPUT").format(
                    LAYER_NAME, self.path, ", ".join(missing))
            )
        self.layer.SetAttributeFilter(None)
        for feature in self.layer:
            tile_id = feature.GetField("tile_id")
            try:
                other_hash = parse_tile_id(tile_id)[2]
            except (TypeError, ValueError):
                continue
            if other_hash != grid_hash:
                raise OutputError(
                    tr("RESUME: {0} holds tiles of another chip grid (tile {1}); the rasters, CHIP_SIZE or OVERLAP "
                       "changed. Choose a new OUTPUT or switch RESUME off.").format(self.path, tile_id)
                )
            if feature.GetField("status") == STATUS_OK:
                self.done.add(tile_id)
            else:
                self._stale.setdefault(tile_id, []).append(feature.GetFID())
        self.layer.ResetReading()

    def write(self, records: Iterable[tuple[Mapping[str, Any], Bounds]]) -> int:
        """Write one batch in one transaction; rows of the same tiles that are not ``ok`` are replaced."""
        records = list(records)
        if not records:
            return 0
        self.ds.StartTransaction()
        try:
            for record, bounds in records:
                for fid in self._stale.get(record["tile_id"], ()):
                    self.layer.DeleteFeature(fid)
                feature = ogr.Feature(self._defn)
                for name in FIELD_NAMES:
                    value = record[name]
                    if value is None:
                        feature.SetFieldNull(name)
                    else:
                        feature.SetField(name, value)
                feature.SetGeometry(_polygon(bounds))
                if self.layer.CreateFeature(feature) != ogr.OGRERR_NONE:
                    raise OutputError(tr("Cannot write tile {0} to {1}").format(record["tile_id"], self.path))
            self.ds.CommitTransaction()
        except Exception:
            self.ds.RollbackTransaction()
            raise
        for record, _ in records:
            self._stale.pop(record["tile_id"], None)
            if record["status"] == STATUS_OK:
                self.done.add(record["tile_id"])
        return len(records)

    def close(self) -> None:
        if self.ds is not None:
            self.layer = None
            self.ds.FlushCache()
            self.ds = None


def _polygon(bounds: Bounds) -> ogr.Geometry:
    xmin, ymin, xmax, ymax = bounds
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in ((xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin)):
        ring.AddPoint_2D(x, y)
    polygon = ogr.Geometry(ogr.wkbPolygon)
    polygon.AddGeometry(ring)
    return polygon
