"""Incremental GeoPackage output written with OGR.

Each batch of tiles is one SQLite transaction, so a cancel or a crash keeps every finished batch and the
file stays valid. RESUME reads the tile ids already ``ok`` and skips them; any other row of a tile that is
redone is deleted first, so a tile is never in the layer twice. RESUME also compares the output's run metadata
(its fingerprint: rasters, bands, grid, stretch, model) with the run's and refuses another run's output unless
forced.

Without RESUME the run is staged (issue 16): it writes to a hidden temporary GeoPackage next to OUTPUT that
replaces OUTPUT (``os.replace``, between transactions, with the connection closed) with the first batch holding a
captioned tile; from then on it appends to OUTPUT in place, so a crash keeps what was done for RESUME. A run that
fails or is canceled before captioning anything leaves a previous OUTPUT as it was (:meth:`TileWriter.finish`).
What may be resumed, staging and promotion are decided by ``core.output_contract.OutputContract``, the same for
``ccexpert describe``; this module holds the OGR primitives (:class:`GdalStore`) and the plugin's words.
:func:`check_output` refuses an OUTPUT that is one of the inputs before anything is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from osgeo import ogr, osr

from .about import tr
from .core.fields import FIELD_NAMES, FIELDS, LAYER_NAME, RUN_METADATA_TAG
from .core.grid import Bounds
from .core.output_contract import OutputContract, OutputRefused, StoredLayer

_OGR_TYPES = {"str": ogr.OFTString, "int": ogr.OFTInteger, "real": ogr.OFTReal}


class OutputError(ValueError):
    """The OUTPUT file cannot be used; the message says why and what to do."""


def check_output(path: str, inputs: Mapping[str, str | None]) -> None:
    """OutputError when OUTPUT is not a GeoPackage file or is one of ``inputs`` (label -> path) under any name
    (symlink, hard link). Reads and changes nothing."""
    for label, other in inputs.items():
        if other and _same_file(path, other):
            raise OutputError(
                tr("OUTPUT {0} is the {1} ({2}); an input is never overwritten. Choose another OUTPUT file.").format(
                    path, label, other
                )
            )
    if os.path.isdir(path):
        raise OutputError(tr("OUTPUT {0} is a directory; give the path of a .gpkg file").format(path))
    if not path.lower().endswith(".gpkg"):
        raise OutputError(tr("OUTPUT must be a GeoPackage (.gpkg) file, got {0}").format(path))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b.split("|", 1)[0])
    except (OSError, ValueError):
        return False


class GdalStore:
    """The GeoPackage primitives of ``core.output_contract.OutputStore``, written with OGR: one data source kept
    open between batches, a batch in one transaction. Decides nothing."""

    def __init__(self, target: str):
        self.target = target  # OUTPUT, named in errors
        self.ds = None
        self.layer = None
        self._defn = None
        self._fids: dict[str, list[int]] = {}  # tile id -> fids of its rows (read on open), for ``replace``

    def create(self, path: str, crs_wkt: str, metadata: Mapping[str, Any] | None) -> None:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        self.ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
        if self.ds is None:
            raise OutputError(tr("Cannot create the GeoPackage {0} (next to {1})").format(path, self.target))
        self.layer = self.ds.CreateLayer(LAYER_NAME, srs, ogr.wkbPolygon, options=["SPATIAL_INDEX=YES"])
        for field_name, kind in FIELDS:
            self.layer.CreateField(ogr.FieldDefn(field_name, _OGR_TYPES[kind]))
        if metadata is not None:  # the run's parameters, for `ccexpert report` (core.fields.run_metadata)
            self.layer.SetMetadataItem(RUN_METADATA_TAG, json.dumps(dict(metadata)))
        self._defn = self.layer.GetLayerDefn()

    def open_existing(self, path: str) -> StoredLayer:
        self.ds = ogr.Open(path, 1)
        if self.ds is None:
            raise OutputError(tr("Resume: {0} is not a GeoPackage that can be opened for writing").format(path))
        layers = [self.ds.GetLayer(i).GetName() for i in range(self.ds.GetLayerCount())]
        self.layer = self.ds.GetLayerByName(LAYER_NAME)
        if self.layer is None:
            self._defn = None
            return StoredLayer(layers)
        self._defn = self.layer.GetLayerDefn()
        fields = [self._defn.GetFieldDefn(i).GetName() for i in range(self._defn.GetFieldCount())]
        tiles = []
        self._fids = {}
        self.layer.SetAttributeFilter(None)
        if "tile_id" in fields and "status" in fields:
            for feature in self.layer:
                tile_id = feature.GetField("tile_id")
                tiles.append((tile_id, feature.GetField("status")))
                self._fids.setdefault(tile_id, []).append(feature.GetFID())
        self.layer.ResetReading()
        return StoredLayer(layers, fields, tiles, self.layer.GetMetadataItem(RUN_METADATA_TAG))

    def append_rows(self, rows, replace) -> None:
        """One transaction: the rows of the tiles in ``replace`` are deleted and ``rows`` written, or nothing."""
        self.ds.StartTransaction()
        try:
            for tile_id in replace:
                for fid in self._fids.get(tile_id, ()):
                    self.layer.DeleteFeature(fid)
            for record, bounds in rows:
                feature = ogr.Feature(self._defn)
                for name in FIELD_NAMES:
                    value = record[name]
                    if value is None:
                        feature.SetFieldNull(name)
                    else:
                        feature.SetField(name, value)
                feature.SetGeometry(_polygon(bounds))
                if self.layer.CreateFeature(feature) != ogr.OGRERR_NONE:
                    raise OutputError(tr("Cannot write tile {0} to {1}").format(record["tile_id"], self.target))
            self.ds.CommitTransaction()
        except Exception:
            self.ds.RollbackTransaction()
            raise
        for tile_id in replace:
            self._fids.pop(tile_id, None)

    def close(self) -> None:
        if self.ds is not None:
            self._defn = None
            self.layer = None
            self.ds.FlushCache()
            self.ds = None


class TileWriter(OutputContract):
    """``change_captions`` layer of a GeoPackage at ``path`` (created, replaced or resumed): the output contract of
    ``core.output_contract`` over a :class:`GdalStore` (the GDAL twin of ``ccexpert.gpkg_output.TileWriter``).

    ``metadata`` (``core.fields.run_metadata``) is stored with a new layer and, on resume, compared with the stored
    one: OutputError naming what differs unless ``force``. ``differences`` keeps what ``force`` let through."""

    def __init__(
        self,
        path: str,
        crs_wkt: str,
        grid_hash: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        resume: bool = False,
        force: bool = False,
    ):
        try:
            super().__init__(GdalStore(path), path, crs_wkt, grid_hash, metadata, resume=resume, force=force)
        except OutputRefused as exc:
            raise OutputError(_refusal_text(exc)) from None


def _refusal_text(exc: OutputRefused) -> str:
    """The plugin's words for a resume the output contract refused."""
    if exc.kind == "damaged":
        return tr(
            "Resume: {0} is damaged ({1}); it cannot be continued. Choose a new output file or switch "
            "Resume off to replace it."
        ).format(exc.path, exc.detail)
    if exc.kind == "no_layer":
        return tr("Resume: {0} has no layer {1}; choose another output file").format(exc.path, LAYER_NAME)
    if exc.kind == "fields":
        return tr("Resume: layer {0} in {1} lacks the fields {2}; choose another output file").format(
            LAYER_NAME, exc.path, ", ".join(exc.items)
        )
    if exc.kind == "grid":
        return tr(
            "Resume: {0} holds tiles of another chip grid (tile {1}); the rasters, chip size or overlap "
            "changed. Choose a new output file or switch Resume off."
        ).format(exc.path, exc.detail)
    if exc.kind == "unchecked":
        return tr(
            "Resume: {0} cannot be checked: {1}. Choose a new output file or switch Resume off; tick "
            '"Resume even if the output was made from other inputs" only when you know it was made from '
            "these inputs."
        ).format(exc.path, "; ".join(exc.items))
    return tr(
        "Resume: {0} was made by another run: {1}. Choose a new output file or switch Resume off; tick "
        '"Resume even if the output was made from other inputs" only when the tiles done so far still '
        "hold (e.g. the same pixels re-exported)."
    ).format(exc.path, "; ".join(exc.items))


def _polygon(bounds: Bounds) -> ogr.Geometry:
    xmin, ymin, xmax, ymax = bounds
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in ((xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin)):
        ring.AddPoint_2D(x, y)
    polygon = ogr.Geometry(ogr.wkbPolygon)
    polygon.AddGeometry(ring)
    return polygon
