"""The layer's style travels with its data: the QML written as the default style into the GeoPackage's
``layer_styles`` table (the table QGIS reads and writes for database styles), so the output opens styled wherever it
is opened: browser panel, drag and drop, ``qgis_process`` or ``ccexpert describe`` outputs, batch runs.

Qt-free (sqlite3 only): the plugin and ``ccexpert describe`` share it. Call it once the GeoPackage is closed by its
writer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

STYLE_NAME = "ccexpert change captions"
_PLUGIN_DIR = Path(__file__).resolve().parents[1]
DESCRIPTION = "Changed tiles outlined, caption as label and map tip (written by CCExpert)"

_CREATE = """CREATE TABLE IF NOT EXISTS layer_styles (
    id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
    f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
    useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), update_time DATETIME DEFAULT CURRENT_TIMESTAMP
)"""


def write_default_style(gpkg: str | Path, layer: str, qml: str, name: str = STYLE_NAME) -> None:
    """Store `qml` as the default style of `layer` in `gpkg` (replacing an earlier one of the same name, and making
    it the only default). ValueError when `gpkg` has no such feature layer."""
    with sqlite3.connect(str(gpkg)) as db:
        found = db.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)).fetchone()
        if found is None:
            raise ValueError(f"{gpkg} has no feature layer {layer!r}")
        db.execute(_CREATE)
        db.execute(  # registered as an attributes table, as GDAL does for the styles QGIS saves
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
            "VALUES ('layer_styles', 'attributes', 'layer_styles', '', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
        )
        db.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (layer,))
        db.execute("DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?", (layer, name))
        db.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, "
            "styleQML, styleSLD, useAsDefault, description, owner, ui, update_time) "
            "VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            (layer, found[0], name, qml, DESCRIPTION),
        )


def shipped_style() -> str:
    """The QML the plugin ships, in its ``styles`` folder (source tree, plugin zip and wheel alike)."""
    path = _PLUGIN_DIR / "styles" / "change_captions.qml"
    if not path.is_file():
        raise FileNotFoundError(f"the change_captions.qml style is not installed ({path})")
    return path.read_text(encoding="utf-8")


def write_shipped_style(gpkg: str | Path, layer: str) -> None:
    """Store the shipped QML as `layer`'s default style in `gpkg`."""
    write_default_style(gpkg, layer, shipped_style())


def default_style(gpkg: str | Path, layer: str) -> str | None:
    """The QML of `layer`'s default style in `gpkg`, or None."""
    with sqlite3.connect(str(gpkg)) as db:
        try:
            row = db.execute(
                "SELECT styleQML FROM layer_styles WHERE f_table_name = ? AND useAsDefault = 1 "
                "ORDER BY id DESC LIMIT 1",
                (layer,),
            ).fetchone()
        except sqlite3.OperationalError:  # no layer_styles table
            return None
    return row[0] if row else None


__all__ = ["STYLE_NAME", "default_style", "shipped_style", "write_default_style", "write_shipped_style"]
