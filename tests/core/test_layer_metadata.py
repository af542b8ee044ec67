"""The output layer's title and abstract in gpkg_contents (what QGIS shows as the layer's metadata)."""

from __future__ import annotations

import sqlite3

import fiona
import pytest
from ccexpert_changes.core.layer_metadata import TITLE, read_abstract, run_abstract, run_title, write_abstract

DEMO_INFO = {
    "model_name": "ccexpert-demo-synthetic",
    "model_version": "synthetic-seed0",
    "demo": True,
    "chip_size": 384,
}
REAL_INFO = {"model_name": "ccexpert-7b", "model_version": "1.0", "demo": False, "change_expert": True}


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


def test_demo_abstract_says_captions_of_real_imagery_are_not_meaningful():
    text = run_abstract(DEMO_INFO, {"CAPTIONED": 25, "CHANGED": 8, "ERRORS": 0, "SKIPPED_NODATA": 11})
    assert text.startswith(
        "Made with the DEMO model ccexpert-demo-synthetic: it only knows synthetic scenes; "
        "captions of real imagery are not meaningful."
    )
    assert "25 tiles captioned, 8 changed, 0 errors, 11 skipped for nodata." in text
    assert run_title(DEMO_INFO) == f"{TITLE} (DEMO model)"


def test_real_model_abstract_names_the_model_and_rasters():
    text = run_abstract(REAL_INFO, {"captioned": 3}, before="/d/a.tif", after="/d/b.tif", backend="http://h:8000")
    assert "DEMO" not in text and "ccexpert-7b (1.0)" in text
    assert "Before: /d/a.tif. After: /d/b.tif." in text and "Backend: http://h:8000." in text
    assert "3 tiles captioned." in text
    assert run_title(REAL_INFO) == TITLE
    general = run_abstract({"model_name": "qwen", "change_expert": False})
    assert "general vision-language model" in general


def test_written_title_and_abstract_are_in_gpkg_contents(gpkg):
    write_abstract(gpkg, "change_captions", "first", "one")
    write_abstract(gpkg, "change_captions", run_title(DEMO_INFO), run_abstract(DEMO_INFO))
    assert read_abstract(gpkg, "change_captions") == (run_title(DEMO_INFO), run_abstract(DEMO_INFO))
    with fiona.open(gpkg, layer="change_captions") as src:  # the data is untouched
        assert [f["properties"]["caption"] for f in src] == ["a house is built"]


def test_identifier_taken_by_another_layer_and_missing_layer(gpkg):
    with sqlite3.connect(gpkg) as db:
        db.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier) VALUES ('other', 'attributes', ?)", (TITLE,)
        )
    write_abstract(gpkg, "change_captions", TITLE, "abstract")
    assert read_abstract(gpkg, "change_captions") == (f"{TITLE} (change_captions)", "abstract")
    with pytest.raises(ValueError, match="no layer 'nope'"):
        write_abstract(gpkg, "nope", "t", "a")
    assert read_abstract(gpkg, "nope") == (None, None)


def test_a_pixel_size_warning_is_kept_in_the_abstract_right_after_the_model():
    note = "The model was trained on about 0.5 m per pixel; these chips give it 2 m per pixel."
    text = run_abstract(REAL_INFO, {"captioned": 4}, notes=[note, ""])
    assert text.index("ccexpert-7b") < text.index("Warning: " + note) < text.index("4 tiles captioned")
    assert text.count("Warning:") == 1
    assert "Warning" not in run_abstract(REAL_INFO, {"captioned": 4})
