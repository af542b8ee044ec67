"""The ``change_captions`` GeoPackage of ``ccexpert describe``: written batch by batch, resumable, never duplicated,
and never at the cost of the previous output or an input.

Written with fiona (OGR): its record-wise ``writerecords`` on a layer opened in append mode commits one
SQLite transaction per batch, so a crash or Ctrl-C keeps every finished batch and never leaves half a batch
(pyogrio, the other OGR binding, is built for whole dataframes). A unique index on ``tile_id`` makes a
duplicate tile impossible even if two runs write the same file. On resume, tiles whose status is not ``ok``
are deleted (plain SQL: GeoPackage is SQLite) and captioned again; ``ok`` tiles are skipped.

Safety of the target (issue 16). :func:`check_output_path` refuses, before anything is opened or contacted, an
output that is not a ``.gpkg``, is a directory, is an input (the same file under any name: symlink, hard
link), or exists without ``--resume``/``--overwrite``. A resume appends to the existing file in place, one
transaction per batch, after its run metadata (the fingerprint of the run that made it) matched. A fresh or
``--overwrite`` run is *staged* (``staged=True``): it writes to a hidden temporary GeoPackage in the same folder
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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import fiona
from ccexpert_changes.core.fields import (
    FIELD_NAMES,
    FIELDS,
    LAYER_NAME,
    RUN_METADATA_TAG,
    STATUS_OK,
    check_record,
)
from ccexpert_changes.core.grid import Bounds, parse_tile_id
from ccexpert_changes.core.output_contract import (
    check_fingerprint,
    damage,
    partial_path,
    promote,
    remove_sqlite,
    remove_stale_partials,
)

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


class TileWriter:
    """Appends tile records to ``path`` (layer ``change_captions``); ``done`` holds the tile ids already ok.

    ``resume``: continue an existing file in place (its run metadata must match ``metadata`` unless ``force``).
    ``overwrite``: replace an existing file. ``staged``: write a fresh or replacing run to a temporary file that
    replaces ``path`` with the first batch holding an ``ok`` tile (see the module docstring); without it an
    existing file is deleted at once (only after every check of this constructor passed)."""

    def __init__(
        self,
        path: str | Path,
        crs_wkt: str,
        grid_hash: str,
        metadata: Mapping[str, Any],
        resume: bool = False,
        overwrite: bool = False,
        *,
        staged: bool = False,
        force: bool = False,
    ):
        self.target = Path(path)
        self.path = self.target  # where the writes go now: the temporary file until promoted
        self.done: set[str] = set()
        self.redone = 0
        self.fingerprint_differences: list[str] = []  # what --force let through on resume
        self.staged = False
        self.replaces = False  # a staged run that would replace an existing output
        check_output_path(self.target, {}, resume=resume and not overwrite, overwrite=overwrite)
        if self.target.exists() and resume and not overwrite:
            self._open_existing(grid_hash, metadata, force)
            return
        self.target.parent.mkdir(parents=True, exist_ok=True)
        if staged:
            self.replaces = self.target.exists()
            remove_stale_partials(self.target)
            self.path = partial_path(self.target)
            self.staged = True
        elif self.target.exists():  # overwrite, unstaged
            self.target.unlink()
        try:
            with fiona.open(self.path, "w", driver="GPKG", layer=LAYER_NAME, schema=SCHEMA, crs_wkt=crs_wkt) as dst:
                dst.update_tags({RUN_METADATA_TAG: json.dumps(dict(metadata))})
            with contextlib.closing(sqlite3.connect(self.path)) as db, db:
                db.execute(f'CREATE UNIQUE INDEX "{LAYER_NAME}_tile_id" ON "{LAYER_NAME}" (tile_id)')
        except BaseException as exc:
            if self.staged:
                remove_sqlite(self.path)
            if isinstance(exc, Exception) and not isinstance(exc, OSError):
                # fiona reports a full disk as a GDAL error (CPLE_AppDefinedError "disk I/O error"): one kind for
                # the caller, whatever the layer below says
                raise OutputCreateError(f"cannot create {self.target}: {_one_line(exc)}") from exc
            raise

    def _open_existing(self, grid_hash: str, metadata: Mapping[str, Any], force: bool) -> None:
        broken = damage(self.path)  # never append to a damaged file (not even with --force)
        if broken:
            raise ValueError(
                f"--resume: {self.path} is damaged ({broken}); it cannot be continued. Write to a new file or "
                "use --overwrite"
            )
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
            text = src.tags().get(RUN_METADATA_TAG)
        with contextlib.closing(sqlite3.connect(self.path)) as db, db:
            rows = db.execute(f'SELECT tile_id, status FROM "{LAYER_NAME}"').fetchall()
            hashes = {parse_tile_id(tile_id)[2] for tile_id, _ in rows}
            if hashes and hashes != {grid_hash}:
                raise ValueError(
                    f"{self.path} was made on a different chip grid (hash {', '.join(sorted(hashes))}, now "
                    f"{grid_hash}: other rasters, chip size or overlap); write to a new file or use --overwrite"
                )
            check = check_fingerprint(text, metadata)
            differences = check.problems
            if differences and not force:
                what = "cannot be checked" if not check.readable else "was made by another run"
                raise ValueError(
                    f"--resume: {self.path} {what}: {'; '.join(differences)}. Write to a new file or use "
                    "--overwrite; --resume --force appends anyway (only when you know the tiles done so far still "
                    "hold, e.g. the same pixels re-exported)"
                )
            self.done = {tile_id for tile_id, status in rows if status == STATUS_OK}
            self.redone = db.execute(f'DELETE FROM "{LAYER_NAME}" WHERE status IS NOT ?', (STATUS_OK,)).rowcount
            db.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{LAYER_NAME}_tile_id" ON "{LAYER_NAME}" (tile_id)')
        self.fingerprint_differences = differences

    def write(self, tiles: Iterable[tuple[dict, Bounds]]) -> int:
        """Append ``(record, bounds)`` pairs in one transaction; returns how many were written. A staged run's
        first batch with an ``ok`` tile replaces the target."""
        features = []
        for record, bounds in tiles:
            check_record(record)
            features.append(fiona.Feature.from_dict({"geometry": polygon(bounds), "properties": record}))
        if not features:
            return 0
        with fiona.open(self.path, "a", layer=LAYER_NAME) as dst:
            dst.writerecords(features)
        ok = {f.properties["tile_id"] for f in features if f.properties["status"] == STATUS_OK}
        self.done.update(ok)
        if ok and self.staged:
            self.promote()
        return len(features)

    def promote(self) -> None:
        """Replace the target with the staged file (atomic; no connection is open between batches)."""
        if not self.staged:
            return
        promote(self.path, self.target)
        self.path, self.staged = self.target, False

    def discard(self) -> None:
        """Drop a staged file that was never promoted; the target is left as it was."""
        if self.staged:
            remove_sqlite(self.path)
            self.path, self.staged = self.target, False

    def finish(self, keep: bool) -> bool:
        """End of a staged run that has not promoted yet: ``keep`` promotes it, else it is dropped. Returns whether
        the target holds this run's output."""
        if self.staged:
            if keep:
                self.promote()
            else:
                self.discard()
                return False
        return True


def _open_layer(path: str | Path):
    try:
        return fiona.open(path, layer=LAYER_NAME)
    except (fiona.errors.DriverError, ValueError) as exc:
        raise ValueError(f"{path}: not a describe output (GeoPackage with layer {LAYER_NAME!r}): {exc}") from None


def count_rows(path: str | Path) -> int:
    """Rows of the ``change_captions`` layer, read-only (the end-of-run re-count)."""
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return int(db.execute(f'SELECT count(*) FROM "{LAYER_NAME}"').fetchone()[0])


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
