"""Names for a run's result that survive and can be told apart (issue 25.2): a default OUTPUT file that is a new
file in a folder the analyst keeps (never a temporary file QGIS deletes on exit, never an existing file), and a
layer name that says which after raster and when, so three runs are not three identical "Change captions".

Qt-free (os, datetime): the plugin and its tests use it without a GUI.
"""

from __future__ import annotations

import os
import re
from datetime import datetime

DEFAULT_STEM = "ccexpert_changes"
LAYER_TITLE = "Change captions"
_UNSAFE = re.compile(r"[^\w.-]+")


def unique_path(folder: str, stem: str, suffix: str = ".gpkg") -> str:
    """``folder/stem.gpkg``, or ``stem_2.gpkg``, ``stem_3.gpkg``... : the first name no file (nor a run's hidden
    partial file) uses yet."""
    stem = _UNSAFE.sub("_", stem).strip("_") or DEFAULT_STEM
    n = 1
    while True:
        name = f"{stem}{suffix}" if n == 1 else f"{stem}_{n}{suffix}"
        path = os.path.join(folder, name)
        if not os.path.lexists(path) and not any(
            entry.startswith(f".{name}.") for entry in _entries(folder)
        ):  # TileWriter stages into ".NAME.<pid>-<id>.partial.gpkg"
            return path
        n += 1


def _entries(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def default_output_path(folder: str, when: datetime) -> str:
    """A new GeoPackage in ``folder`` named after the time: ``ccexpert_changes_20261207_1605.gpkg``."""
    return unique_path(folder, f"{DEFAULT_STEM}_{when:%Y%m%d_%H%M}")


def result_layer_name(
    after_path: str | None,
    when: datetime,
    taken: set[str] | frozenset[str] = frozenset(),
    title: str = LAYER_TITLE,
) -> str:
    """ "Change captions – after.tif 2026-12-07 16:05", numbered " (2)", " (3)"... when ``taken`` (the names the
    project already has) holds it. ``title`` is the translated "Change captions"."""
    after = os.path.basename((after_path or "").split("|", 1)[0])
    base = f"{title} – {after} {when:%Y-%m-%d %H:%M}" if after else f"{title} {when:%Y-%m-%d %H:%M}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base} ({n})"
    return name


__all__ = ["DEFAULT_STEM", "LAYER_TITLE", "default_output_path", "result_layer_name", "unique_path"]
