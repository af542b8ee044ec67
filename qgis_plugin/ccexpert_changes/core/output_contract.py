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
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fields import (
    LAYER_NAME,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SKIPPED_NODATA,
    fingerprint_differences,
    fingerprint_keys,
)
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


__all__ = [
    "PARTIAL_SUFFIX",
    "ResumeCheck",
    "check_fingerprint",
    "damage",
    "layer_counts",
    "partial_path",
    "promote",
    "remove_sqlite",
    "remove_stale_partials",
]
