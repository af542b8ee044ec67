"""The resumable ``change_captions`` GeoPackage (``ccexpert.gpkg_output``), directly: which tiles a resume skips,
which it redoes, which files it refuses (issue 20: the resume logic was only reached through ``describe``)."""

from __future__ import annotations

import sqlite3

import pytest
from ccexpert.gpkg_output import TileWriter, read_metadata, read_tiles
from ccexpert_changes.core.fields import LAYER_NAME, make_record

CRS = 'LOCAL_CS["test"]'
GRID, OTHER_GRID = "ab12cd34", "0badc0de"


def _tile(row: int, col: int, status: str = "ok", grid: str = GRID) -> tuple[dict, tuple]:
    tile_id = f"r{row:05d}_c{col:05d}_{grid}"
    if status == "ok":
        record = make_record(
            tile_id=tile_id, row=row, col=col, status="ok", caption=f"tile {row} {col}", confidence=0.5, changed=True
        )
    else:
        record = make_record(tile_id=tile_id, row=row, col=col, status=status, error="backend said no")
    return record, (col * 10.0, -(row + 1) * 10.0, (col + 1) * 10.0, -row * 10.0)


def _writer(path, resume=False, overwrite=False, grid=GRID) -> TileWriter:
    return TileWriter(path, CRS, grid, {"grid_hash": grid, "bands": "1,2,3"}, resume=resume, overwrite=overwrite)


def _statuses(path) -> dict[str, str]:
    rows, _ = read_tiles(path)
    return {r["tile_id"]: r["status"] for r in rows}


def test_resume_skips_ok_tiles_and_redoes_the_others(tmp_path):
    out = tmp_path / "o.gpkg"
    writer = _writer(out)
    assert writer.write([_tile(0, 0), _tile(0, 1, "error"), _tile(1, 0, "skipped_nodata"), _tile(1, 1)]) == 4
    assert writer.done == {_tile(0, 0)[0]["tile_id"], _tile(1, 1)[0]["tile_id"]}  # only ok tiles count as done
    assert read_metadata(out) == {"grid_hash": GRID, "bands": "1,2,3"}

    resumed = _writer(out, resume=True)
    ok_ids = {_tile(0, 0)[0]["tile_id"], _tile(1, 1)[0]["tile_id"]}
    assert resumed.done == ok_ids
    assert resumed.redone == 2  # the error and the nodata tile are written again
    assert len(_statuses(out)) == 4  # kept until their tiles are written again (issue 26: one rule with the plugin)
    resumed.write([_tile(0, 1)])
    statuses = _statuses(out)  # the error row was replaced by the new one, not doubled
    assert len(statuses) == 4 and list(statuses.values()).count("ok") == 3
    assert statuses[_tile(1, 0)[0]["tile_id"]] == "skipped_nodata"  # a tile the run has not reached yet keeps its row
    resumed.write([_tile(1, 0, "skipped_nodata")])
    assert len(_statuses(out)) == 4
    assert resumed.done == ok_ids | {_tile(0, 1)[0]["tile_id"]}  # nodata tiles are never "done"


def test_a_tile_cannot_be_written_twice(tmp_path):
    out = tmp_path / "o.gpkg"
    writer = _writer(out)
    writer.write([_tile(0, 0)])
    with pytest.raises(Exception):  # noqa: B017 (the unique index: OGR/SQLite raise their own error types)
        writer.write([_tile(0, 0)])
    resumed = _writer(out, resume=True)  # the index is there after a resume too
    with pytest.raises(Exception):  # noqa: B017
        resumed.write([_tile(0, 0)])
    with sqlite3.connect(out) as db:
        assert db.execute(f'SELECT COUNT(*) FROM "{LAYER_NAME}"').fetchone() == (1,)


def test_existing_output_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "o.gpkg"
    _writer(out).write([_tile(0, 0), _tile(0, 1, "error")])
    with pytest.raises(ValueError, match="exists: use --resume"):
        _writer(out)
    fresh = _writer(out, overwrite=True)
    assert fresh.done == set() and fresh.redone == 0 and fresh.replaces
    assert len(_statuses(out)) == 2  # staged: the old output stays until the new run captions a tile
    fresh.write([_tile(1, 1)])
    assert _statuses(out) == {_tile(1, 1)[0]["tile_id"]: "ok"}
    with pytest.raises(ValueError, match="must be a GeoPackage"):
        _writer(tmp_path / "o.shp")


def test_resume_refuses_another_grid_and_a_mixed_file(tmp_path):
    out = tmp_path / "o.gpkg"
    _writer(out).write([_tile(0, 0), _tile(0, 1, "error")])
    with pytest.raises(ValueError, match="different chip grid"):
        _writer(out, resume=True, grid=OTHER_GRID)
    assert len(_statuses(out)) == 2  # refused before deleting anything
    # a file that already holds tiles of two grids is refused even for one of them
    mixed = tmp_path / "mixed.gpkg"
    _writer(mixed).write([_tile(0, 0), _tile(0, 1, grid=OTHER_GRID)])
    with pytest.raises(ValueError, match="different chip grid"):
        _writer(mixed, resume=True)


def _foreign_gpkg(path, layer: str, fields: dict[str, str]) -> None:
    import fiona

    schema = {"geometry": "Polygon", "properties": fields}
    with fiona.open(path, "w", driver="GPKG", layer=layer, schema=schema, crs_wkt=CRS) as dst:
        ring = [[(0, 0), (1, 0), (1, 1), (0, 0)]]
        dst.write({"geometry": {"type": "Polygon", "coordinates": ring}, "properties": dict.fromkeys(fields, "x")})


def test_resume_refuses_a_file_without_the_layer_or_its_fields_and_leaves_it_as_it_was(tmp_path):
    other = tmp_path / "other.gpkg"
    _foreign_gpkg(other, "parcels", {"name": "str"})
    before = other.read_bytes()
    with pytest.raises(ValueError, match=r"has no layer 'change_captions' \(layers: \['parcels'\]\); not a describe"):
        _writer(other, resume=True)
    partial = tmp_path / "partial.gpkg"  # a change_captions layer of something else: no status, caption...
    _foreign_gpkg(partial, LAYER_NAME, {"tile_id": "str"})
    with pytest.raises(ValueError, match=r"layer change_captions lacks fields \['row', 'col', 'caption'"):
        _writer(partial, resume=True)
    assert other.read_bytes() == before
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(b"not a GeoPackage" * 200)
    with pytest.raises(ValueError, match="is damaged .*it cannot be continued"):
        _writer(junk, resume=True)
    assert junk.read_bytes() == b"not a GeoPackage" * 200
