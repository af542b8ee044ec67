"""The default style written into a GeoPackage's layer_styles table (read by QGIS wherever the file is opened)."""

from __future__ import annotations

import sqlite3

import fiona
import pytest
from ccexpert_changes.core.style_table import STYLE_NAME, default_style, write_default_style


@pytest.fixture
def gpkg(tmp_path):
    path = tmp_path / "out.gpkg"
    schema = {"geometry": "Polygon", "properties": {"caption": "str"}}
    with fiona.open(path, "w", driver="GPKG", layer="change_captions", schema=schema, crs="EPSG:32633") as dst:
        dst.write(
            {
                "geometry": {"type": "Polygon", "coordinates": [[(0, 0), (1, 0), (1, 1), (0, 0)]]},
                "properties": {"caption": "a house is built"},
            }
        )
    return path


def test_the_style_is_the_layers_default_and_replaces_an_earlier_one(gpkg):
    write_default_style(gpkg, "change_captions", "<qgis>first</qgis>")
    write_default_style(gpkg, "change_captions", "<qgis>second</qgis>")
    write_default_style(gpkg, "change_captions", "<qgis>other</qgis>", name="analyst's own")
    assert default_style(gpkg, "change_captions") == "<qgis>other</qgis>"
    with sqlite3.connect(gpkg) as db:
        rows = db.execute("SELECT styleName, useAsDefault, f_geometry_column FROM layer_styles ORDER BY id").fetchall()
        assert rows == [(STYLE_NAME, 0, "geom"), ("analyst's own", 1, "geom")]
        assert db.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'").fetchone() == (
            "attributes",
        )
    with fiona.open(gpkg, layer="change_captions") as src:  # the data layer is untouched
        assert [f["properties"]["caption"] for f in src] == ["a house is built"]


def test_no_such_layer_is_refused(gpkg):
    with pytest.raises(ValueError, match="no feature layer 'other'"):
        write_default_style(gpkg, "other", "<qgis/>")
    assert default_style(gpkg, "change_captions") is None
