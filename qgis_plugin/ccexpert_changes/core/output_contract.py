"""The output contract of both front ends, over their stores (the plugin's GDAL ``output.TileWriter`` and describe's
fiona ``gpkg_output.TileWriter``), stdlib only: staging and promotion, what a resume may continue, the layer's counts
(the lock is ``output_lock``).

Staging: a fresh or replacing run writes ``.NAME.PID-XXXX.partial.gpkg`` next to the output (:func:`partial_path`) and
:func:`promote` s it over the output (fsync, atomic ``os.replace``, fsync of the folder) with its first captioned
batch; until then a previous output is untouched. Partials of runs whose process is gone are removed by the next run
on the same output (:func:`remove_stale_partials`).

What a resume may continue, decided once:

A resume appends to an output in place, so it must know the output was made by the same run: the same rasters,
bands, grid, stretch and model (the *fingerprint*, stored as run metadata in the GeoPackage). Before issue 24, an
output whose run metadata had been deleted was compared with nothing and accepted, and one whose metadata page was
corrupt was appended to and left failing ``PRAGMA integrity_check``. The policy now:

- a GeoPackage that SQLite finds damaged is never resumed (``--force`` does not help; ``--overwrite`` does);
- no readable fingerprint (missing, not JSON, or none of its items) is a reason to refuse, like a fingerprint that
  differs; ``--force`` / "Resume even if ..." lets both through, and the front end says what it let through.

All of it is decided here, once, by :class:`OutputContract` (issue 26): it drives an :class:`OutputStore`, a few
GeoPackage primitives (create, open and read, append rows, close) that each front end writes with its own
library (GDAL in QGIS, fiona for describe). A refusal is an :class:`OutputRefused` with a ``kind``, so each front
end keeps its own words (a CLI line, a translated Processing message).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .fields import (
    FIELD_NAMES,
    LAYER_NAME,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SKIPPED_NODATA,
    check_record,
    fingerprint_differences,
    fingerprint_keys,
)
from .grid import Bounds, parse_tile_id
from .output_lock import pid_alive

PARTIAL_SUFFIX = ".partial.gpkg"
SQLITE_SIDECARS = ("-journal", "-wal", "-shm")


def partial_path(target: str | Path) -> Path:
    """Where a staged run writes until it is promoted: hidden, next to ``target``, named after this process."""
    target = Path(target)
    return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")


def remove_sqlite(path: str | Path) -> None:
    """Delete a GeoPackage and its SQLite sidecar files (journal, WAL), whichever exist."""
    for name in (str(path), *(str(path) + suffix for suffix in SQLITE_SIDECARS)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def remove_stale_partials(target: str | Path) -> list[Path]:
    """Delete the staged files that runs on ``target`` left when they were killed (their process is gone)."""
    target = Path(target)
    removed = []
    for partial in target.parent.glob(f".{target.name}.*{PARTIAL_SUFFIX}"):
        try:
            pid = int(partial.name[len(target.name) + 2 :].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not pid_alive(pid):
            remove_sqlite(partial)
            removed.append(partial)
    return removed


def _fsync(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def promote(partial: str | Path, target: str | Path) -> None:
    """The staged file replaces ``target`` atomically, durable once this returns (no connection may be open)."""
    partial, target = Path(partial), Path(target)
    _fsync(partial)
    os.replace(partial, target)
    _fsync(target.absolute().parent, directory=True)


@dataclass
class ResumeCheck:
    """``problems``: one readable line per reason not to resume; ``readable``: whether there was a fingerprint to
    compare (False: the problems say why there was none)."""

    problems: list[str] = field(default_factory=list)
    readable: bool = True


def check_fingerprint(stored_text: str | None, current: Mapping[str, Any]) -> ResumeCheck:
    """Compare the run metadata an output holds (``stored_text``, JSON) with the run about to resume it."""
    if not stored_text or not stored_text.strip():
        return ResumeCheck(["it holds no run metadata (fingerprint), so its inputs cannot be checked"], False)
    try:
        stored = json.loads(stored_text)
    except ValueError as exc:
        return ResumeCheck([f"its run metadata is unreadable ({exc}), so its inputs cannot be checked"], False)
    if not isinstance(stored, dict) or not any(key in stored for key in fingerprint_keys()):
        return ResumeCheck(["its run metadata holds no fingerprint, so its inputs cannot be checked"], False)
    return ResumeCheck(fingerprint_differences(stored, current))


def damage(path: str | Path) -> str | None:
    """Why SQLite finds the GeoPackage damaged (``PRAGMA quick_check``), or None when it is sound.

    Read-only, with one exception SQLite itself makes: a run killed inside a transaction leaves a *hot journal*
    (``NAME-journal``) holding the pages it had changed. A read-only connection cannot roll it back and SQLite refuses
    it ("attempt to write a readonly database", ``SQLITE_READONLY_ROLLBACK``); that file is not damaged, it is an
    interrupted write whose last commit is intact. So it is opened read-write once, which makes SQLite restore the
    last commit (what QGIS or any reader would do on open), and then checked. Nothing committed is lost.
    """
    base = Path(path).absolute().as_uri()
    rows: list[Any] = []
    for mode in ("ro", "rw"):
        try:
            with contextlib.closing(sqlite3.connect(f"{base}?mode={mode}", uri=True)) as db:
                rows = db.execute("PRAGMA quick_check").fetchall()
            break
        except sqlite3.Error as exc:
            if mode == "ro" and getattr(exc, "sqlite_errorname", "") == "SQLITE_READONLY_ROLLBACK":
                continue  # a hot journal: let SQLite roll it back (read-write open), then check
            return str(exc)
    messages = [str(row[0]) for row in rows]
    if messages == ["ok"]:
        return None
    return "; ".join(messages[:3]) + (f" (+{len(messages) - 3} more)" if len(messages) > 3 else "")


def layer_counts(path: str | Path) -> dict[str, int]:
    """What the layer holds, counted from its rows (read-only): ``captioned``, ``changed``, ``errors``,
    ``skipped_nodata``, ``rows``. Every count shown after a run (summary, message bar, outputs, abstract) comes from
    here, so after a Resume it is the layer's, not only the last run's (issue 25)."""
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        table = LAYER_NAME  # a constant: no user text reaches the query
        query = f'SELECT status, COUNT(*), SUM(changed = 1) FROM "{table}" GROUP BY status'  # nosec B608
        rows = db.execute(query).fetchall()
    by_status = {status: (int(n), int(changed or 0)) for status, n, changed in rows}
    return {
        "captioned": by_status.get(STATUS_OK, (0, 0))[0],
        "changed": by_status.get(STATUS_OK, (0, 0))[1],
        "errors": by_status.get(STATUS_ERROR, (0, 0))[0],
        "skipped_nodata": by_status.get(STATUS_SKIPPED_NODATA, (0, 0))[0],
        "rows": sum(n for n, _ in by_status.values()),
    }


Row = tuple[Mapping[str, Any], Bounds]  # a tile's record (``core.fields``) and its polygon's bounds


class OutputRefused(ValueError):
    """An existing output that a resume may not continue. ``kind``: ``damaged`` (``detail``: what SQLite said),
    ``no_layer`` (``items``: the layers it has), ``fields`` (``items``: the missing fields), ``grid`` (``detail``: the
    first tile of another grid; ``items``: every grid hash it holds), ``unchecked`` (no readable fingerprint) or
    ``other_run`` (``items``: what differs). The front ends word it; nothing was changed in the file."""

    def __init__(self, kind: str, path: str, detail: str = "", items: Sequence[str] = ()):
        super().__init__(f"{path}: {kind} {detail} {'; '.join(items)}".strip())
        self.kind, self.path, self.detail, self.items = kind, path, detail, list(items)


@dataclass
class StoredLayer:
    """What an existing output holds, read by its store in one go: the names of its layers and, of the
    ``change_captions`` layer (all empty when it has none), the field names, ``(tile_id, status)`` of every row and
    the run metadata item (JSON text, None when there is none)."""

    layers: list[str]
    fields: list[str] = field(default_factory=list)
    tiles: list[tuple[str, str]] = field(default_factory=list)
    run_metadata: str | None = None


class OutputStore(Protocol):
    """The GeoPackage primitives :class:`OutputContract` drives: ``output.GdalStore`` (the plugin, GDAL) and
    ``ccexpert.gpkg_output.FionaStore`` (describe, fiona). One store serves one output; it decides nothing."""

    def create(self, path: str, crs_wkt: str, metadata: Mapping[str, Any] | None) -> None:
        """Create ``path`` with an empty ``change_captions`` layer (and ``metadata`` as its run metadata)."""
        ...

    def open_existing(self, path: str) -> StoredLayer:
        """Open ``path`` to append to its ``change_captions`` layer, and say what it holds."""
        ...

    def append_rows(self, rows: Sequence[Row], replace: Collection[str]) -> None:
        """Delete the rows of the tiles in ``replace`` and append ``rows``: one transaction where the library allows."""
        ...

    def close(self) -> None:
        """Release the file (before it is renamed, and at the end)."""
        ...


def _grid_check(path: str, rows: Sequence[tuple[str, str]], grid_hash: str) -> None:
    """OutputRefused ``grid`` when a row belongs to another chip grid (even beside rows of this one)."""
    hashes: set[str] = set()
    first_other = ""
    for tile_id, _ in rows:
        try:
            other = parse_tile_id(tile_id)[2]
        except (TypeError, ValueError):
            continue  # not a tile id of any grid: nothing to compare
        hashes.add(other)
        if other != grid_hash and not first_other:
            first_other = tile_id
    others = hashes - {grid_hash}
    if others:
        raise OutputRefused("grid", path, first_other, sorted(hashes))


class OutputContract:
    """The output of one run as the run loop sees it (``core.run_loop.OutputWriter``: ``done``, ``replaces``,
    ``write``, ``finish``, ``discard``), the same for both front ends over their :class:`OutputStore`.

    ``resume`` and an existing ``target``: every check before anything is changed (damage, layer, fields, grid, and
    the fingerprint unless ``force``; ``differences`` keeps what ``force`` let through); ``done`` holds the tiles
    already ``ok``, the others (``redone``) are replaced when the run writes them again, in the same batch. Otherwise
    the run is staged in a partial file that replaces ``target`` with the first batch holding a captioned tile."""

    def __init__(
        self,
        store: OutputStore,
        target: str | Path,
        crs_wkt: str,
        grid_hash: str,
        metadata: Mapping[str, Any] | None,
        *,
        resume: bool = False,
        force: bool = False,
    ):
        self.store = store
        self.target = str(target)
        self.path = self.target  # where the writes go now: the partial file until it is promoted
        self.done: set[str] = set()
        self.differences: list[str] = []  # what ``force`` let through on resume
        self.replaces = False  # a staged run that would replace an existing output
        self.redone = 0  # rows of an earlier run that are not ok: their tiles are done again
        self._stale: set[str] = set()
        self._partial: str | None = None
        if resume and os.path.exists(self.target):
            self._resume(grid_hash, metadata, force)
        else:
            self._stage(crs_wkt, metadata)

    @property
    def staged(self) -> bool:
        """Still writing to the partial file (nothing captioned yet)."""
        return self._partial is not None

    def _resume(self, grid_hash: str, metadata: Mapping[str, Any] | None, force: bool) -> None:
        broken = damage(self.target)  # never append to a damaged file, not even forced
        if broken:
            raise OutputRefused("damaged", self.target, broken)
        stored = self.store.open_existing(self.target)
        try:
            if LAYER_NAME not in stored.layers:
                raise OutputRefused("no_layer", self.target, items=stored.layers)
            missing = [name for name in FIELD_NAMES if name not in stored.fields]
            if missing:
                raise OutputRefused("fields", self.target, items=missing)
            rows = stored.tiles
            _grid_check(self.target, rows, grid_hash)
            if metadata is not None:
                check = check_fingerprint(stored.run_metadata, metadata)
                if check.problems and not force:
                    kind = "other_run" if check.readable else "unchecked"
                    raise OutputRefused(kind, self.target, items=check.problems)
                self.differences = check.problems
        except BaseException:
            self.store.close()
            raise
        self.done = {tile_id for tile_id, status in rows if status == STATUS_OK}
        self._stale = {tile_id for tile_id, status in rows if status != STATUS_OK} - self.done
        self.redone = len(self._stale)

    def _stage(self, crs_wkt: str, metadata: Mapping[str, Any] | None) -> None:
        target = os.path.abspath(self.target)
        self.replaces = os.path.exists(target)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        remove_stale_partials(target)
        partial = str(partial_path(target))
        try:
            self.store.create(partial, crs_wkt, metadata)
        except BaseException:
            self.store.close()
            remove_sqlite(partial)  # nothing of a failed creation is left
            raise
        self.path = self._partial = partial

    def write(self, rows: Sequence[Row]) -> int:
        """Append one batch (one transaction); an earlier row of a tile written again is replaced with it. A staged
        run's first batch holding an ``ok`` tile replaces the target."""
        rows = list(rows)
        if not rows:
            return 0
        for record, _ in rows:
            check_record(record)
        ids = [record["tile_id"] for record, _ in rows]
        self.store.append_rows(rows, self._stale.intersection(ids))
        self._stale.difference_update(ids)
        ok = {record["tile_id"] for record, _ in rows if record["status"] == STATUS_OK}
        self.done.update(ok)
        if ok and self.staged:
            self.promote()
        return len(rows)

    def promote(self) -> None:
        """The partial file replaces the target (store closed, atomic rename, reopened in place)."""
        if self._partial is None:
            return
        self.store.close()
        promote(self._partial, self.target)
        self.path, self._partial = self.target, None
        self.store.open_existing(self.target)

    def discard(self) -> None:
        """Drop a staged run whatever it wrote (a refused key): the target is not created or stays as it was."""
        if self._partial is not None:
            self.store.close()
            remove_sqlite(self._partial)
            self.path, self._partial = self.target, None

    def finish(self, keep: bool) -> bool:
        """End the run: a staged run is promoted when ``keep``, else dropped (the target stays as it was). Returns
        whether the target holds this run's output."""
        if self.staged:
            if not keep:
                self.discard()
                return False
            self.promote()
        self.store.close()
        return True


__all__ = [
    "PARTIAL_SUFFIX",
    "OutputContract",
    "OutputRefused",
    "OutputStore",
    "ResumeCheck",
    "Row",
    "StoredLayer",
    "check_fingerprint",
    "damage",
    "layer_counts",
    "partial_path",
    "promote",
    "remove_sqlite",
    "remove_stale_partials",
]
