"""The ``change_captions`` GeoPackage of ``ccexpert describe``: written batch by batch, resumable, never duplicated,
and never at the cost of the previous output or an input.

Written with fiona (OGR): its record-wise ``writerecords`` on a layer opened in append mode commits one
SQLite transaction per batch, so a crash or Ctrl-C keeps every finished batch and never leaves half a batch
(pyogrio, the other OGR binding, is built for whole dataframes). A unique index on ``tile_id`` makes a
duplicate tile impossible even if two runs write the same file. What a resume may continue, staging and promotion
are decided by ``core.output_contract.OutputContract``, the same for the plugin's GDAL writer; this module holds the
fiona primitives (:class:`FionaStore`), describe's path checks and describe's words for a refusal. On resume,
``ok`` tiles are skipped; a row that is not ``ok`` stays until its tile is written again (deleted with plain SQL,
GeoPackage is SQLite, just before the batch that replaces it).

Safety of the target (issue 16). :func:`check_output_path` refuses, before anything is opened or contacted, an
output that is not a ``.gpkg``, is a directory, is an input (the same file under any name: symlink, hard
link), or exists without ``--resume``/``--overwrite``. A resume appends to the existing file in place, one
transaction per batch, after its run metadata (the fingerprint of the run that made it) matched. A fresh or
``--overwrite`` run is *staged*: it writes to a hidden temporary GeoPackage in the same folder
(``.NAME.PID-XXXX.partial.gpkg``) that replaces the target atomically (``os.replace``) with its first batch
holding a captioned tile, after which the run goes on appending to the target in place, so a crash from then
on is resumed as usual. Until then the previous output, if any, is untouched: an ``--overwrite`` run that
fails or is killed before captioning anything leaves it as it was (:meth:`TileWriter.finish` decides what a
run that ended without captioning keeps). Promoting at the first captioned batch rather than at the very end
keeps ``--resume`` working after a crash of a fresh run: its tiles are in the target, not in a temporary file
that a resume would have to find. Temporary files of runs that were killed are removed by the next run on
the same target (their process id is dead).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import fiona
from ccexpert_changes.core.fields import FIELDS, LAYER_NAME, RUN_METADATA_TAG
from ccexpert_changes.core.grid import Bounds
from ccexpert_changes.core.output_contract import OutputContract, OutputRefused, Row, StoredLayer

_OGR_TYPES = {"str": "str", "int": "int32", "real": "float"}  # int32: OFTInteger, as the plugin (GDAL) writes it
SCHEMA = {"geometry": "Polygon", "properties": {name: _OGR_TYPES[kind] for name, kind in FIELDS}}


class OutputCreateError(OSError):
    """The new output could not be created (a full or read-only disk...); nothing of it is left."""


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith(("b'", 'b"')) and len(text) > 3:  # GDAL messages come as bytes
        text = text[2:-1]
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def polygon(bounds: Bounds) -> dict:
    xmin, ymin, xmax, ymax = bounds
    return {"type": "Polygon", "coordinates": [[(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin)]]}


def check_output_path(
    path: str | Path, inputs: Mapping[str, str | None], resume: bool = False, overwrite: bool = False
) -> None:
    """Every refusal about the output that needs nothing but the file system; reads and changes nothing.
    ``inputs`` maps a label ("before raster", "AOI") to a path; ValueError naming the problem."""
    path = Path(path)
    for label, other in inputs.items():
        if other and _same_file(path, other):
            raise ValueError(
                f"output {path} is the {label} ({other}): an input is never overwritten; choose another output file"
            )
    if path.is_dir():
        raise ValueError(f"output {path} is a directory: give the path of a .gpkg file")
    if path.suffix.lower() != ".gpkg":
        raise ValueError(f"output must be a GeoPackage (.gpkg), got {path.name}")
    if resume and overwrite:
        raise ValueError(
            "--resume and --overwrite exclude each other: resume continues the output, overwrite replaces it"
        )
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise ValueError(f"output {path} exists and is not a regular file")
        if not resume and not overwrite:
            raise ValueError(f"{path} exists: use --resume to continue that run or --overwrite to replace it")
    folder = _existing_parent(path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write in {folder}: permission denied")


def _same_file(a: Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or is not a local path): not the same file
        return False


def _existing_parent(path: Path) -> Path:
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


class FionaStore:
    """The GeoPackage primitives of ``core.output_contract.OutputStore``, written with fiona (and plain SQLite for
    what OGR has no call for: the unique index, the rows' ids and statuses, deleting rows). Decides nothing, and
    keeps nothing open between calls."""

    def __init__(self, target: str | Path):
        self.target = Path(target)  # named in errors: the user's file, not the partial one
        self.path: Path | None = None
        self._indexed = False

    def create(self, path: str, crs_wkt: str, metadata: Mapping[str, Any] | None) -> None:
        try:
            with fiona.open(path, "w", driver="GPKG", layer=LAYER_NAME, schema=SCHEMA, crs_wkt=crs_wkt) as dst:
                if metadata is not None:
                    dst.update_tags({RUN_METADATA_TAG: json.dumps(dict(metadata))})
            with contextlib.closing(sqlite3.connect(path)) as db, db:
                db.execute(f'CREATE UNIQUE INDEX "{LAYER_NAME}_tile_id" ON "{LAYER_NAME}" (tile_id)')
        except Exception as exc:
            if isinstance(exc, OSError):
                raise
            # fiona reports a full disk as a GDAL error (CPLE_AppDefinedError "disk I/O error"): one kind for the
            # caller, whatever the layer below says
            raise OutputCreateError(f"cannot create {self.target}: {_one_line(exc)}") from exc
        self.path, self._indexed = Path(path), True

    def open_existing(self, path: str) -> StoredLayer:
        try:
            layers = list(fiona.listlayers(path))
        except Exception as exc:
            raise ValueError(f"{path} is not a readable GeoPackage: {exc}") from None
        self.path, self._indexed = Path(path), False
        if LAYER_NAME not in layers:
            return StoredLayer(layers)
        with fiona.open(path, layer=LAYER_NAME) as src:
            fields, text = list(src.schema["properties"]), src.tags().get(RUN_METADATA_TAG)
        rows = []
        if "tile_id" in fields and "status" in fields:  # else the contract refuses it for its fields
            with contextlib.closing(sqlite3.connect(path)) as db:
                rows = db.execute(f'SELECT tile_id, status FROM "{LAYER_NAME}"').fetchall()
        return StoredLayer(layers, fields, [(tile_id, status) for tile_id, status in rows], text)

    def append_rows(self, rows: Sequence[Row], replace: Collection[str]) -> None:
        """Rows of the tiles in ``replace`` are deleted first (their own transaction: fiona opens its own), then
        ``rows`` are appended in one transaction; the unique index on ``tile_id`` keeps a tile from being twice in
        the layer, whatever writes the file."""
        if self.path is None:
            raise ValueError(f"{self.target}: no output is open")
        path = self.path
        if replace or not self._indexed:
            with contextlib.closing(sqlite3.connect(path)) as db, db:
                db.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{LAYER_NAME}_tile_id" ON "{LAYER_NAME}" (tile_id)')
                ids = sorted(replace)
                db.executemany(f'DELETE FROM "{LAYER_NAME}" WHERE tile_id = ?', [(tile_id,) for tile_id in ids])
            self._indexed = True
        features = [
            fiona.Feature.from_dict({"geometry": polygon(bounds), "properties": dict(record)})
            for record, bounds in rows
        ]
        with fiona.open(path, "a", layer=LAYER_NAME) as dst:
            dst.writerecords(features)

    def close(self) -> None:
        """Nothing stays open between batches (each write opens and closes the file)."""


class TileWriter(OutputContract):
    """Describe's output (``core.output_contract.OutputContract`` over a :class:`FionaStore`): appends tile records
    to ``path`` (layer ``change_captions``); ``done`` holds the tile ids already ok.

    ``resume``: continue an existing file in place (its run metadata must match ``metadata`` unless ``force``).
    ``overwrite``: replace an existing file, staged like a fresh run (see the module docstring). Refusals are
    ValueErrors in describe's words (``--resume``, ``--overwrite``)."""

    def __init__(
        self,
        path: str | Path,
        crs_wkt: str,
        grid_hash: str,
        metadata: Mapping[str, Any],
        resume: bool = False,
        overwrite: bool = False,
        *,
        force: bool = False,
    ):
        check_output_path(path, {}, resume=resume and not overwrite, overwrite=overwrite)
        try:
            super().__init__(
                FionaStore(path), path, crs_wkt, grid_hash, metadata, resume=resume and not overwrite, force=force
            )
        except OutputRefused as exc:
            raise ValueError(_refusal_text(exc, grid_hash)) from None


def _refusal_text(exc: OutputRefused, grid_hash: str) -> str:
    """Describe's words for a resume the output contract refused."""
    path = exc.path
    if exc.kind == "damaged":
        return (
            f"--resume: {path} is damaged ({exc.detail}); it cannot be continued. Write to a new file or use "
            "--overwrite"
        )
    if exc.kind == "no_layer":
        return f"{path} has no layer {LAYER_NAME!r} (layers: {exc.items}); not a describe output"
    if exc.kind == "fields":
        return f"{path}: layer {LAYER_NAME} lacks fields {exc.items}"
    if exc.kind == "grid":
        return (
            f"{path} was made on a different chip grid (hash {', '.join(exc.items)}, now {grid_hash}: other rasters, "
            "chip size or overlap); write to a new file or use --overwrite"
        )
    what = "cannot be checked" if exc.kind == "unchecked" else "was made by another run"
    return (
        f"--resume: {path} {what}: {'; '.join(exc.items)}. Write to a new file or use --overwrite; --resume --force "
        "appends anyway (only when you know the tiles done so far still hold, e.g. the same pixels re-exported)"
    )


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
