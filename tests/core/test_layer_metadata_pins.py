"""Writing the same layer title twice keeps it (issue 30): only a title another layer holds gets the layer name
appended. A resumed or re-finished run writes its title again; it must not become "title (change_captions)"."""

from __future__ import annotations

import sqlite3

import fiona
from ccexpert_changes.core.layer_metadata import TITLE, read_abstract, write_abstract


def test_the_same_title_written_twice_stays_as_it_is(tmp_path):
    """Broken copy: the "taken" query without ``AND table_name != ?`` found the layer's own row and renamed the
    title on the second write (this test failed)."""
    path = tmp_path / "out.gpkg"
    schema = {"geometry": "Polygon", "properties": {"caption": "str"}}
    with fiona.open(path, "w", driver="GPKG", layer="change_captions", schema=schema, crs="EPSG:32633") as dst:
        ring = [(0, 0), (1, 0), (1, 1), (0, 0)]
        dst.write({"geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": {"caption": "a house"}})
    for abstract in ("first run", "resumed run", "finished again"):
        write_abstract(path, "change_captions", TITLE, abstract)
        assert read_abstract(path, "change_captions") == (TITLE, abstract)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM gpkg_contents WHERE identifier = ?", (TITLE,)).fetchone() == (1,)
