"""Areas of interest and raster orientations that used to be mishandled (issue 24, finding 4): a self-intersecting
AOI lost a lobe, a NaN coordinate gave a traceback, a whole-globe EPSG:4326 AOI and a south-up raster were refused
as "do not overlap". The plugin side is in tests/plugin/test_aoi_repair.py."""

from __future__ import annotations

import logging
import math

import fiona
import pytest
from ccexpert.cli import main
from ccexpert.describe import DescribeOptions, EngineCaptioner, describe
from ccexpert.gpkg_output import read_tiles
from ccexpert.service import Settings, create_app
from rasterio.transform import Affine, from_origin
from service_helpers import ORIGIN, EchoEngine, blocks, thread_server, write_tif
from shapely.geometry import Polygon, mapping

UNIT = 192.0  # one 384 px chip at 0.5 m
X0, Y0 = ORIGIN


def at(col: float, row: float) -> tuple[float, float]:
    """Map coordinates of a point given in chip units from the raster's top-left corner."""
    return (X0 + col * UNIT, Y0 - row * UNIT)


@pytest.fixture
def rasters(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    return (
        write_tif(tmp_path / "b.tif", blocks(1152), transform),
        write_tif(tmp_path / "a.tif", blocks(1152) + 1, transform),
    )


def write_aoi(path, geometry: dict, crs: str):
    with fiona.open(path, "w", driver="GPKG", crs=crs, schema={"geometry": "Polygon", "properties": {}}) as dst:
        dst.write({"geometry": geometry, "properties": {}})
    return path


def cells(out) -> set[tuple[int, int]]:
    """Grid indexes (0-based) of the output's tiles; the layer's row/col fields are 1-based."""
    tiles, _ = read_tiles(out)
    return {(t["row"] - 1, t["col"] - 1) for t in tiles}


def run(before, after, out, **kwargs):
    return describe(
        DescribeOptions(str(before), str(after), str(out), progress=False, **kwargs), EngineCaptioner(EchoEngine())
    )


def test_a_bow_tie_aoi_keeps_both_lobes_and_says_it_was_repaired(rasters, tmp_path, caplog):
    # edges (0.1, 0.1)-(2.9, 2.9) and (2.9, 0.1)-(0.1, 2.9) cross in the middle: a left and a right lobe
    bow = Polygon([at(0.1, 0.1), at(2.9, 2.9), at(2.9, 0.1), at(0.1, 2.9)])
    assert not bow.is_valid
    aoi = write_aoi(tmp_path / "bow.gpkg", mapping(bow), "EPSG:32633")
    with caplog.at_level(logging.WARNING):
        run(*rasters, tmp_path / "o.gpkg", aoi=str(aoi))
    got = cells(tmp_path / "o.gpkg")
    left, right = {(r, 0) for r in range(3)}, {(r, 2) for r in range(3)}
    assert left <= got and right <= got, f"a lobe was lost: {sorted(got)}"  # buffer(0) kept only the left lobe
    assert "not a valid polygon" in caplog.text and "Self-intersection" in caplog.text and "repaired" in caplog.text


@pytest.mark.parametrize("crs", ["EPSG:32633", "EPSG:4326"])
def test_an_aoi_with_a_nan_coordinate_is_refused_naming_it(rasters, tmp_path, crs):
    ring = [at(0.1, 0.1), at(1, 0.1), (math.nan, Y0 - 50), at(0.1, 1), at(0.1, 0.1)]
    if crs == "EPSG:4326":
        ring = [(14.0, 51.0), (14.01, 51.0), (math.nan, 51.0), (14.0, 51.01), (14.0, 51.0)]
    aoi = write_aoi(tmp_path / "nan.gpkg", {"type": "Polygon", "coordinates": [ring]}, crs)
    with pytest.raises(ValueError, match=r"feature 1, has a coordinate that is not a number \(nan"):
        run(*rasters, tmp_path / "o.gpkg", aoi=str(aoi))
    assert not (tmp_path / "o.gpkg").exists()


def test_nan_aoi_on_the_command_line_is_one_line_and_exit_2(rasters, tmp_path, capsys):
    ring = [at(0.1, 0.1), at(1, 0.1), (math.nan, Y0 - 50), at(0.1, 1), at(0.1, 0.1)]
    aoi = write_aoi(tmp_path / "nan.gpkg", {"type": "Polygon", "coordinates": [ring]}, "EPSG:32633")
    before, after = rasters
    out = tmp_path / "o.gpkg"
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        code = main(["describe", str(before), str(after), "-o", str(out), "--aoi", str(aoi), "--backend", url, "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "not a number" in err and "Traceback" not in err and not out.exists()


def test_a_whole_globe_aoi_in_degrees_covers_the_whole_raster(rasters, tmp_path):
    globe = Polygon([(-180, -90), (180, -90), (180, 90), (-180, 90)])
    aoi = write_aoi(tmp_path / "globe.gpkg", mapping(globe), "EPSG:4326")
    summary = run(*rasters, tmp_path / "o.gpkg", aoi=str(aoi))
    assert cells(tmp_path / "o.gpkg") == {(r, c) for r in range(3) for c in range(3)} and summary.total == 9


def test_a_south_up_pair_is_described_on_the_raster(tmp_path):
    south_up = Affine(0.5, 0.0, X0, 0.0, 0.5, Y0 - 576)  # row 0 is the southern edge
    before = write_tif(tmp_path / "b.tif", blocks(1152), south_up)
    after = write_tif(tmp_path / "a.tif", blocks(1152) + 1, south_up)
    summary = run(before, after, tmp_path / "o.gpkg")
    tiles, _ = read_tiles(tmp_path / "o.gpkg")
    assert summary.total == len(tiles) == 9 and all(t["status"] == "ok" for t in tiles)
    for t in tiles:
        xmin, ymin, xmax, ymax = t["bounds"]
        assert X0 <= xmin < xmax <= X0 + 576 and Y0 - 576 <= ymin < ymax <= Y0
    first = next(t for t in tiles if (t["row"], t["col"]) == (1, 1))
    assert first["bounds"][1] == pytest.approx(Y0 - 576)  # chip (0, 0) starts at the raster's first row: the south


def test_a_raster_smaller_than_one_chip_is_refused_before_anything_is_written(tmp_path, capsys):
    """102 px at 10 m (issue 25.4): it used to give one padded chip "skipped for nodata", a polygon 3.8 km wide
    over a 1 km raster and a run that "succeeded" with 0 captioned. Now: exit 2 naming the chip size that fits,
    and that chip size describes the raster with polygons inside it."""
    transform = from_origin(*ORIGIN, 10.0, 10.0)
    before = write_tif(tmp_path / "b.tif", blocks(102, chip=51), transform)
    after = write_tif(tmp_path / "a.tif", blocks(102, chip=51) + 1, transform)
    out = tmp_path / "o.gpkg"
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        code = main(["describe", str(before), str(after), "-o", str(out), "--backend", url, "-q"])
        err = capsys.readouterr().err
        assert code == 2 and "102 x 102 pixels, smaller than one chip of 384 x 384" in err, err
        assert "chip size of at most 102 pixels" in err and "Traceback" not in err and not out.exists()
        code = main(["describe", str(before), str(after), "-o", str(out), "--backend", url, "-q", "--chip-size", "102"])
    assert code == 0
    tiles, _ = read_tiles(out)
    assert len(tiles) == 1 and tiles[0]["status"] == "ok" and tiles[0]["nodata_before"] == 0
    assert tiles[0]["bounds"] == pytest.approx((X0, Y0 - 1020, X0 + 1020, Y0))  # the raster, not 3.8 km past it
