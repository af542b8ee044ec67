"""describe's plan (issue 26): the options are checked and read once into a ``DescribePlan`` that the run works from.
Making a plan writes nothing (no output, no lock, no staged file), the plan holds the chips it counted, and a check
that fails once the rasters are open closes them again."""

from __future__ import annotations

import logging

import fiona
import pytest
from ccexpert import raster_io
from ccexpert.describe import DescribeError, DescribeOptions, EngineCaptioner
from ccexpert.describe_plan import make_plan
from rasterio.transform import from_origin
from service_helpers import CRS_UTM, ORIGIN, EchoEngine, blocks, write_tif
from shapely.geometry import box, mapping


@pytest.fixture
def rasters(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    return (
        str(write_tif(tmp_path / "b.tif", blocks(1152), transform)),
        str(write_tif(tmp_path / "a.tif", blocks(1152) + 1, transform)),
    )


@pytest.fixture
def opened(monkeypatch):
    """Every RasterPair the plan opens (through ``raster_io.open_pair``)."""
    pairs = []

    class Recorded(raster_io.RasterPair):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pairs.append(self)

    monkeypatch.setattr(raster_io, "RasterPair", Recorded)
    return pairs


class RefusedKey(EngineCaptioner):
    def check_access(self) -> None:
        raise DescribeError("the backend refused the API key", refused_key=True)


def test_a_plan_writes_nothing_and_holds_the_chips_it_counted(rasters, tmp_path, opened):
    out = tmp_path / "out.gpkg"
    files = sorted(p.name for p in tmp_path.iterdir())
    options = DescribeOptions(*rasters, str(out), progress=False, context_note="  after the storm  ")
    with make_plan(options, EngineCaptioner(EchoEngine())) as plan:
        chips = list(plan.chips)
        assert plan.total == len(chips) == 9  # 1152 px at 384 px: 3 x 3
        assert [(c.row, c.col) for c in chips] == [(r, c) for r in range(3) for c in range(3)]  # grid order
        assert {c.tile_id.rsplit("_", 1)[1] for c in chips} == {plan.grid.grid_hash} == {plan.metadata["grid_hash"]}
        assert plan.metadata["context"] == plan.run.context_note == "after the storm"  # checked once, stripped
        assert plan.sources == (str(tmp_path / "b.tif"), str(tmp_path / "a.tif"))
        assert sorted(p.name for p in tmp_path.iterdir()) == files  # no output, lock or staged file yet
    assert len(opened) == 1 and opened[0].before.closed and opened[0].after.closed


def write_aoi(path, geometry, crs=CRS_UTM):
    with fiona.open(path, "w", driver="GPKG", crs=crs, schema={"geometry": "Polygon", "properties": {}}) as dst:
        dst.write({"geometry": mapping(geometry), "properties": {}})
    return str(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("aoi elsewhere", "does not overlap the area covered by both rasters"),
        ("too many chips", "over --max-chips 4"),
        ("refused key", "refused the API key"),
    ],
)
def test_a_check_that_fails_once_the_rasters_are_open_closes_them_and_writes_nothing(
    rasters, tmp_path, opened, case, message
):
    out = tmp_path / "out.gpkg"
    files = sorted(p.name for p in tmp_path.iterdir())
    kwargs: dict = {"progress": False}
    captioner = EngineCaptioner(EchoEngine())
    if case == "aoi elsewhere":
        x0, y0 = ORIGIN
        kwargs["aoi"] = write_aoi(tmp_path / "far.gpkg", box(x0 + 5000, y0 - 5000, x0 + 6000, y0 - 4000))
        files = sorted(p.name for p in tmp_path.iterdir())
    elif case == "too many chips":
        kwargs["max_chips"] = 4
    else:
        captioner = RefusedKey(EchoEngine())
    with pytest.raises((ValueError, DescribeError), match=message):
        make_plan(DescribeOptions(*rasters, str(out), **kwargs), captioner)
    assert len(opened) == 1 and opened[0].before.closed and opened[0].after.closed
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_before_equal_to_after_is_refused_before_a_raster_is_opened(rasters, tmp_path, opened):
    """The sources are identified (and Before = After refused) before ``raster_io.open_pair`` opens anything."""
    before, _ = rasters
    link = tmp_path / "link.tif"
    link.symlink_to(before)
    with pytest.raises(ValueError, match="before and after are the same raster"):
        make_plan(DescribeOptions(before, str(link), str(tmp_path / "out.gpkg")), EngineCaptioner(EchoEngine()))
    assert opened == [] and not (tmp_path / "out.gpkg").exists()


def test_a_raster_smaller_than_a_chip_is_refused_after_the_pixel_size_warning_it_points_to(tmp_path, caplog):
    """The refusal says "check the pixel-size warning": the warning is logged first (the grid is laid once, after
    the backend named its chip size and pixel size; it used to be laid, and refuse, before the warning)."""

    class HalfMetre(EchoEngine):
        def info(self):
            return {**super().info(), "gsd_m": 0.5}

    coarse = from_origin(*ORIGIN, 10.0, 10.0)
    before = str(write_tif(tmp_path / "b.tif", blocks(102, chip=51), coarse))
    after = str(write_tif(tmp_path / "a.tif", blocks(102, chip=51) + 1, coarse))
    warned = caplog.at_level(logging.WARNING, logger="ccexpert.describe")
    with warned, pytest.raises(ValueError, match="smaller than one chip of 384 x 384"):
        make_plan(DescribeOptions(before, after, str(tmp_path / "o.gpkg")), EngineCaptioner(HalfMetre()))
    assert any("trained on about 0.5 m per pixel" in r.getMessage() for r in caplog.records)
