"""The plugin's GDAL writer over the one output contract (issue 26): the refusals keep the plugin's words, leave the
file as it was, and a resume replaces a tile's earlier row in the batch that writes it again, keeping the rows of
tiles it has not reached."""

from __future__ import annotations

import pytest
from ccexpert_changes.core.fields import LAYER_NAME, make_record
from ccexpert_changes.core.output_contract import OutputContract, OutputStore
from ccexpert_changes.output import GdalStore, OutputError, TileWriter
from osgeo import ogr, osr

GRID = "ab12cd34"
META = {"grid_hash": GRID, "bands": "1,2,3"}


def _wkt() -> str:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    return srs.ExportToWkt()


def _tile(col: int, status: str = "ok", grid: str = GRID) -> tuple[dict, tuple]:
    tile_id = f"r00000_c{col:05d}_{grid}"
    if status == "ok":
        record = make_record(tile_id=tile_id, row=0, col=col, status="ok", caption="a road", confidence=0.5, changed=1)
    else:
        record = make_record(tile_id=tile_id, row=0, col=col, status=status, error="backend said no")
    return record, (col * 10.0, 0.0, col * 10.0 + 10.0, 10.0)


def _statuses(path) -> list[tuple[str, str]]:
    ds = ogr.Open(str(path))
    rows = sorted((f.GetField("tile_id"), f.GetField("status")) for f in ds.GetLayerByName(LAYER_NAME))
    ds = None
    return rows


def _foreign(path, layer: str, fields: list[str]) -> None:
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    lyr = ds.CreateLayer(layer, None, ogr.wkbPolygon)
    for name in fields:
        lyr.CreateField(ogr.FieldDefn(name, ogr.OFTString))
    lyr.CreateFeature(ogr.Feature(lyr.GetLayerDefn()))
    ds = None


def test_a_resume_replaces_rows_in_the_batch_that_redoes_them_and_keeps_the_others(tmp_path):
    out = tmp_path / "o.gpkg"
    writer = TileWriter(str(out), _wkt(), GRID, META)
    writer.write([_tile(0), _tile(1, "error"), _tile(2, "skipped_nodata")])
    assert writer.finish(keep=True)
    resumed = TileWriter(str(out), _wkt(), GRID, META, resume=True)
    ids = [_tile(c)[0]["tile_id"] for c in range(3)]
    assert resumed.done == {ids[0]} and resumed.redone == 2
    resumed.write([_tile(1)])
    assert resumed.finish(keep=True)  # stopped here: tile 2 was not reached, its row stays
    assert _statuses(out) == [(ids[0], "ok"), (ids[1], "ok"), (ids[2], "skipped_nodata")]


def test_resume_refusals_keep_the_plugins_words_and_leave_the_file(tmp_path):
    other = tmp_path / "other.gpkg"
    _foreign(other, "parcels", ["name"])
    with pytest.raises(OutputError, match="Resume: .*other.gpkg has no layer change_captions; choose another"):
        TileWriter(str(other), _wkt(), GRID, META, resume=True)
    lacking = tmp_path / "lacking.gpkg"
    _foreign(lacking, LAYER_NAME, ["tile_id"])
    with pytest.raises(OutputError, match="Resume: layer change_captions in .* lacks the fields row, col, caption"):
        TileWriter(str(lacking), _wkt(), GRID, META, resume=True)
    out = tmp_path / "o.gpkg"
    writer = TileWriter(str(out), _wkt(), GRID, META)
    writer.write([_tile(0), _tile(1, "error")])
    writer.finish(keep=True)
    before = out.read_bytes()
    with pytest.raises(OutputError, match=r"holds tiles of another chip grid \(tile r00000_c00000_ab12cd34\)"):
        TileWriter(str(out), _wkt(), "0badc0de", {**META, "grid_hash": "0badc0de"}, resume=True)
    with pytest.raises(OutputError, match="was made by another run: bands"):
        TileWriter(str(out), _wkt(), GRID, {**META, "bands": "3,2,1"}, resume=True)
    assert out.read_bytes() == before
    forced = TileWriter(str(out), _wkt(), GRID, {**META, "bands": "3,2,1"}, resume=True, force=True)
    assert forced.differences and forced.finish(keep=True)


def test_the_gdal_store_has_every_primitive_and_the_writer_is_the_contract():
    """The same check as tests/core/test_output_stores.py, on the imported classes (mypy does not read the plugin)."""
    wanted = {name for name in vars(OutputStore) if not name.startswith("_")}
    assert wanted and wanted <= set(dir(GdalStore))
    assert TileWriter.__mro__[1] is OutputContract and set(vars(TileWriter)) & {"write", "finish", "discard"} == set()
