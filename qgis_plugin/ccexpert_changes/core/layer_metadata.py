"""The output layer's title and abstract, as QGIS shows them (Layer Properties > Information and > Metadata,
the browser's metadata panel): stored in the GeoPackage's ``gpkg_contents`` row of the layer (``identifier`` is
the title, ``description`` the abstract; GDAL exposes them as the layer's IDENTIFIER/DESCRIPTION, which QGIS reads
as its layer metadata). A run made with the synthetic demo model says so there, where whoever opens the file later
looks, not only in the log of the run.

Qt-free (sqlite3 only): the plugin and ``ccexpert describe`` share it. Call it once the GeoPackage is closed by its
writer (GDAL rewrites ``gpkg_contents`` when it writes a layer's own metadata).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TITLE = "CCExpert change captions"


def write_abstract(gpkg_path: str | Path, layer_name: str, title: str, abstract: str) -> None:
    """Store `title` and `abstract` for `layer_name` in `gpkg_path`. ValueError when the GeoPackage has no such
    layer. GeoPackage identifiers are unique: a title another layer of the file already has gets the layer name
    appended."""
    with sqlite3.connect(str(gpkg_path)) as db:
        found = db.execute("SELECT table_name FROM gpkg_contents WHERE table_name = ?", (layer_name,)).fetchone()
        if found is None:
            raise ValueError(f"{gpkg_path} has no layer {layer_name!r}")
        taken = db.execute(
            "SELECT 1 FROM gpkg_contents WHERE identifier = ? AND table_name != ?", (title, layer_name)
        ).fetchone()
        identifier = f"{title} ({layer_name})" if taken else title
        db.execute(
            "UPDATE gpkg_contents SET identifier = ?, description = ?, "
            "last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE table_name = ?",
            (identifier, abstract, layer_name),
        )


def read_abstract(gpkg_path: str | Path, layer_name: str) -> tuple[str | None, str | None]:
    """(title, abstract) of `layer_name` in `gpkg_path`; (None, None) when it has no such layer."""
    with sqlite3.connect(str(gpkg_path)) as db:
        row = db.execute(
            "SELECT identifier, description FROM gpkg_contents WHERE table_name = ?", (layer_name,)
        ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def _model_name(info: Mapping[str, Any]) -> str:
    name = str(info.get("model_name") or "unknown model")
    version = str(info.get("model_version") or "")
    return f"{name} ({version})" if version and version != "unknown" else name


def run_title(info: Mapping[str, Any]) -> str:
    """The layer title: flags the demo model so that it shows in every list of layers' metadata."""
    return f"{TITLE} (DEMO model)" if info.get("demo") else TITLE


def _stat(stats: Mapping[str, Any], key: str) -> int | None:
    for name in (key, key.upper()):
        if stats.get(name) is not None:
            try:
                return int(stats[name])
            except (TypeError, ValueError):
                return None
    return None


def run_abstract(
    info: Mapping[str, Any],
    stats: Mapping[str, Any] | None = None,
    *,
    before: str | None = None,
    after: str | None = None,
    backend: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The layer abstract in words: which model made the captions (the demo model flagged first, in capitals), the
    rasters, and the counts of the run. `info` is the backend's /v1/info (or `CaptionEngine.info()`); `stats` the
    run's counts under ``captioned``, ``changed``, ``errors``, ``skipped_nodata`` (or the algorithm's upper-case
    output names); unknown items are left out. `notes` are warnings about the run (a pixel size far from the
    model's), kept right after the model so that whoever opens the layer later reads them too."""
    name = str(info.get("model_name") or "unknown model")
    parts: list[str] = []
    if info.get("demo"):
        parts.append(
            f"Made with the DEMO model {name}: it only knows synthetic scenes; captions of real imagery "
            "are not meaningful."
        )
    elif info.get("change_expert") is False:
        parts.append(
            f"Captions by {_model_name(info)}, a general vision-language model prompted for changes, not a "
            "change-captioning expert."
        )
    else:
        parts.append(f"Captions by the change-captioning model {_model_name(info)}.")
    parts.extend(f"Warning: {note}" for note in notes if note)
    if before and after:
        parts.append(f"Before: {before}. After: {after}.")
    if backend:
        parts.append(f"Backend: {backend}.")
    counts = []
    for key, words in (
        ("captioned", "tiles captioned"),
        ("changed", "changed"),
        ("errors", "errors"),
        ("skipped_nodata", "skipped for nodata"),
    ):
        value = _stat(stats or {}, key)
        if value is not None:
            counts.append(f"{value} {words}")
    if counts:
        parts.append(", ".join(counts).capitalize() + ".")
    parts.append(
        "One polygon per chip; the caption says what changed between the two dates; confidence is the "
        "model's mean token probability (0-1), not a measured accuracy."
    )
    return " ".join(parts)


def finish_output(
    gpkg_path: str | Path,
    info: Mapping[str, Any],
    counts: Mapping[str, Any],
    *,
    before: str,
    after: str,
    backend: str,
    notes: Sequence[str] = (),
) -> None:
    """What both front ends do once a run's GeoPackage is closed: the shipped QML as the layer's default style and
    the title/abstract naming the model, so the layer opens styled and explained wherever it is opened. Raises
    OSError, ValueError or sqlite3.Error; a caller reports it as costing the styling only, never the captions."""
    from .fields import LAYER_NAME
    from .style_table import write_shipped_style

    write_shipped_style(gpkg_path, LAYER_NAME)
    write_abstract(
        gpkg_path,
        LAYER_NAME,
        run_title(info),
        run_abstract(info, counts, before=before, after=after, backend=backend, notes=notes),
    )


__all__ = ["TITLE", "finish_output", "read_abstract", "run_abstract", "run_title", "write_abstract"]
