"""Incremental GeoPackage output written with OGR.

Each batch of tiles is one SQLite transaction, so a cancel or a crash keeps every finished batch and the
file stays valid. RESUME reads the tile ids already ``ok`` and skips them; any other row of a tile that is
redone is deleted first, so a tile is never in the layer twice. RESUME also compares the output's run metadata
(its fingerprint: rasters, bands, grid, stretch, model) with the run's and refuses another run's output unless
forced.

Without RESUME the run is staged (issue 16): it writes to a hidden temporary GeoPackage next to OUTPUT that
replaces OUTPUT (``os.replace``, between transactions, with the connection closed) with the first batch holding a
captioned tile; from then on it appends to OUTPUT in place, so a crash keeps what was done for RESUME. A run that
fails or is canceled before captioning anything leaves a previous OUTPUT as it was (:meth:`TileWriter.close`).
:func:`check_output` refuses an OUTPUT that is one of the inputs before anything is written.
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
from .core.output_contract import check_fingerprint, damage, partial_path, promote, remove_sqlite, remove_stale_partials

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


class TileWriter:
    """``change_captions`` layer of a GeoPackage at ``path`` (created, replaced or resumed): the plugin's
    ``core.run_loop.OutputWriter`` (the GDAL twin of ``ccexpert.gpkg_output.TileWriter``, same arguments).

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
        self.path = self.target = path  # OUTPUT
        self.done: set[str] = set()
        self.differences: list[str] = []
        self._stale: dict[str, list[int]] = {}  # tile id -> fids of rows not ok, replaced when the tile is redone
        self._partial: str | None = None  # the staged file, until it replaces OUTPUT
        self.replaces = False  # a staged run that would replace an existing OUTPUT
        self.ds = None
        if os.path.exists(path) and resume:
            broken = damage(path)  # never append to a damaged file (not even with RESUME_FORCE)
            if broken:
                raise OutputError(
                    tr(
                        "Resume: {0} is damaged ({1}); it cannot be continued. Choose a new output file or switch "
                        "Resume off to replace it."
                    ).format(path, broken)
                )
            self._open(path)
            if self.layer is None:
                raise OutputError(
                    tr("Resume: {0} has no layer {1}; choose another output file").format(path, LAYER_NAME)
                )
            self._check_resumable(grid_hash, metadata, force)
            return
        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        self.replaces = os.path.exists(path)
        remove_stale_partials(os.path.abspath(path))
        self._partial = str(partial_path(os.path.abspath(path)))
        self.ds = ogr.GetDriverByName("GPKG").CreateDataSource(self._partial)
        if self.ds is None:
            raise OutputError(tr("Cannot create the GeoPackage {0} (next to {1})").format(self._partial, path))
        self.layer = self.ds.CreateLayer(LAYER_NAME, srs, ogr.wkbPolygon, options=["SPATIAL_INDEX=YES"])
        for field_name, kind in FIELDS:
            self.layer.CreateField(ogr.FieldDefn(field_name, _OGR_TYPES[kind]))
        if metadata is not None:  # the run's parameters, for `ccexpert report` (core.fields.run_metadata)
            self.layer.SetMetadataItem(RUN_METADATA_TAG, json.dumps(dict(metadata)))
        self._defn = self.layer.GetLayerDefn()

    def _open(self, path: str) -> None:
        self.ds = ogr.Open(path, 1)
        if self.ds is None:
            raise OutputError(tr("Resume: {0} is not a GeoPackage that can be opened for writing").format(path))
        self.layer = self.ds.GetLayerByName(LAYER_NAME)
        self._defn = self.layer.GetLayerDefn() if self.layer is not None else None

    @property
    def staged(self) -> bool:
        """Still writing to the temporary file (nothing captioned yet)."""
        return self._partial is not None

    def _check_resumable(self, grid_hash: str, metadata: Mapping[str, Any] | None, force: bool) -> None:
        defn = self.layer.GetLayerDefn()
        names = {defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())}
        missing = [n for n in FIELD_NAMES if n not in names]
        if missing:
            raise OutputError(
                tr("Resume: layer {0} in {1} lacks the fields {2}; choose another output file").format(
                    LAYER_NAME, self.path, ", ".join(missing)
                )
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
                    tr(
                        "Resume: {0} holds tiles of another chip grid (tile {1}); the rasters, chip size or overlap "
                        "changed. Choose a new output file or switch Resume off."
                    ).format(self.path, tile_id)
                )
            if feature.GetField("status") == STATUS_OK:
                self.done.add(tile_id)
            else:
                self._stale.setdefault(tile_id, []).append(feature.GetFID())
        self.layer.ResetReading()
        if metadata is None:
            return
        check = check_fingerprint(self.layer.GetMetadataItem(RUN_METADATA_TAG), metadata)
        self.differences = check.problems
        if self.differences and not force:
            if not check.readable:
                raise OutputError(
                    tr(
                        "Resume: {0} cannot be checked: {1}. Choose a new output file or switch Resume off; tick "
                        '"Resume even if the output was made from other inputs" only when you know it was made from '
                        "these inputs."
                    ).format(self.path, "; ".join(self.differences))
                )
            raise OutputError(
                tr(
                    "Resume: {0} was made by another run: {1}. Choose a new output file or switch Resume off; tick "
                    '"Resume even if the output was made from other inputs" only when the tiles done so far still '
                    "hold (e.g. the same pixels re-exported)."
                ).format(self.path, "; ".join(self.differences))
            )

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
        captioned = False
        for record, _ in records:
            self._stale.pop(record["tile_id"], None)
            if record["status"] == STATUS_OK:
                self.done.add(record["tile_id"])
                captioned = True
        if captioned and self.staged:
            self.promote()
        return len(records)

    def promote(self) -> None:
        """The staged file replaces OUTPUT (connection closed, atomic rename, reopened in place)."""
        if not self.staged:
            return
        self._close_ds()
        promote(self._partial, self.path)
        self._partial = None
        self._open(self.path)

    def _close_ds(self) -> None:
        if self.ds is not None:
            self._defn = None
            self.layer = None
            self.ds.FlushCache()
            self.ds = None

    def finish(self, keep: bool = True) -> bool:
        """Close; a run still staged is promoted when ``keep`` (or when there is no OUTPUT to protect), else its
        file is dropped and a previous OUTPUT stays as it was. Returns whether OUTPUT holds this run's tiles."""
        if self.staged and (keep or not self.replaces):
            self.promote()
        self._close_ds()
        if self.staged:
            remove_sqlite(self._partial)
            self._partial = None
            return False
        return True

    def discard(self) -> None:
        """Drop a staged run whatever it wrote (a refused API key): OUTPUT is not created or stays as it was."""
        if self.staged:
            self._close_ds()
            remove_sqlite(self._partial)
            self._partial = None


def _polygon(bounds: Bounds) -> ogr.Geometry:
    xmin, ymin, xmax, ymax = bounds
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in ((xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin)):
        ring.AddPoint_2D(x, y)
    polygon = ogr.Geometry(ogr.wkbPolygon)
    polygon.AddGeometry(ring)
    return polygon
