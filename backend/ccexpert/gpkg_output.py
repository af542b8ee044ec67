"""The ``change_captions`` GeoPackage of ``ccexpert describe``: written batch by batch, resumable, never duplicated.

Written with fiona (OGR): its record-wise ``writerecords`` on a layer opened in append mode commits one
SQLite transaction per batch, so a crash or Ctrl-C keeps every finished batch and never leaves half a batch
(pyogrio, the other OGR binding, is built for whole dataframes). A unique index on ``tile_id`` makes a
duplicate tile impossible even if two runs write the same file. On resume, tiles whose status is not ``ok``
are deleted (plain SQL: GeoPackage is SQLite) and captioned again; ``ok`` tiles are skipped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import fiona
from ccexpert_changes.core.fields import FIELD_NAMES, FIELDS, LAYER_NAME, RUN_METADATA_TAG, STATUS_OK, check_record
from ccexpert_changes.core.grid import Bounds, parse_tile_id

_OGR_TYPES = {"str": "str", "int": "int", "real": "float"}
SCHEMA = {"geometry": "Polygon", "properties": {name: _OGR_TYPES[kind] for name, kind in FIELDS}}


def polygon(bounds: Bounds) -> dict:
    xmin, ymin, xmax, ymax = bounds
    return {"type": "Polygon", "coordinates": [[(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin)]]}


class TileWriter:
    """Appends tile records to ``path`` (layer ``change_captions``); ``done`` holds the tile ids already ok."""

    def __init__(self, path: str | Path, crs_wkt: str, grid_hash: str, metadata: Mapping[str, Any],
                 resume: bool = False, overwrite: bool = False):
        self.path = Path(path)
        self.done: set[str] = set()
        self.redone = 0
        if self.path.exists() and overwrite:
            self.path.unlink()
        if self.path.exists():
            if not resume:
                raise ValueError(f"{self.path} exists: use --resume to continue that run or --overwrite to replace it")
            self._open_existing(grid_hash)
        else:
            if self.path.suffix.lower() != ".gpkg":
                raise ValueError(f"output must be a GeoPackage (.gpkg), got {self.path.name}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with fiona.open(self.path, "w", driver="GPKG", layer=LAYER_NAME, schema=SCHEMA, crs_wkt=crs_wkt) as dst:
                dst.update_tags({RUN_METADATA_TAG: json.dumps(dict(metadata))})
            with sqlite3.connect(self.path) as db:
                db.execute(f'CREATE UNIQUE INDEX "{LAYER_NAME}_tile_id" ON "{LAYER_NAME}" (tile_id)')

    def _open_existing(self, grid_hash: str) -> None:
        try:
            layers = fiona.listlayers(self.path)
        except Exception as exc:
            raise ValueError(f"{self.path} is not a readable GeoPackage: {exc}") from None
        if LAYER_NAME not in layers:
            raise ValueError(f"{self.path} has no layer {LAYER_NAME!r} (layers: {layers}); not a describe output")
        with fiona.open(self.path, layer=LAYER_NAME) as src:
            missing = [n for n in FIELD_NAMES if n not in src.schema["properties"]]
            if missing:
                raise ValueError(f"{self.path}: layer {LAYER_NAME} lacks fields {missing}")
        with sqlite3.connect(self.path) as db:
            rows = db.execute(f'SELECT tile_id, status FROM "{LAYER_NAME}"').fetchall()
            hashes = {parse_tile_id(tile_id)[2] for tile_id, _ in rows}
            if hashes and hashes != {grid_hash}:
                raise ValueError(
                    f"{self.path} was made on a different chip grid (hash {', '.join(sorted(hashes))}, now "
                    f"{grid_hash}: other rasters, chip size or overlap); write to a new file or use --overwrite"
                )
            self.done = {tile_id for tile_id, status in rows if status == STATUS_OK}
            self.redone = db.execute(f'DELETE FROM "{LAYER_NAME}" WHERE status IS NOT ?', (STATUS_OK,)).rowcount
            db.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{LAYER_NAME}_tile_id" ON "{LAYER_NAME}" (tile_id)')

    def write(self, tiles: Iterable[tuple[dict, Bounds]]) -> int:
        """Append ``(record, bounds)`` pairs in one transaction; returns how many were written."""
        features = []
        for record, bounds in tiles:
            check_record(record)
            features.append(fiona.Feature.from_dict({"geometry": polygon(bounds), "properties": record}))
        if not features:
            return 0
        with fiona.open(self.path, "a", layer=LAYER_NAME) as dst:
            dst.writerecords(features)
        self.done.update(f.properties["tile_id"] for f in features if f.properties["status"] == STATUS_OK)
        return len(features)


def _open_layer(path: str | Path):
    try:
        return fiona.open(path, layer=LAYER_NAME)
    except (fiona.errors.DriverError, ValueError) as exc:
        raise ValueError(f"{path}: not a describe output (GeoPackage with layer {LAYER_NAME!r}): {exc}") from None


def read_metadata(path: str | Path) -> dict:
    with _open_layer(path) as src:
        text = src.tags().get(RUN_METADATA_TAG)
    return json.loads(text) if text else {}


def read_tiles(path: str | Path) -> tuple[list[dict], str]:
    """All records (properties + ``bounds``) of a describe output, and its CRS as WKT."""
    out = []
    with _open_layer(path) as src:
        crs_wkt = src.crs_wkt
        for feature in src:
            props = dict(feature.properties)
            xs, ys = zip(*feature.geometry.coordinates[0], strict=True)
            props["bounds"] = (min(xs), min(ys), max(xs), max(ys))
            out.append(props)
    return out, crs_wkt
