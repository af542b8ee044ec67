"""``ccexpert report`` on pairs whose after raster is not on the before grid (issue 25, finding 1): the run resamples
the after raster through a WarpedVRT, and the report must read the same way (it used to fail with "WarpedVRT does
not permit boundless reads" on every such pair)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio
from ccexpert.cli import main
from ccexpert.describe import DescribeOptions, EngineCaptioner, describe
from rasterio.transform import from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject
from service_helpers import ORIGIN, EchoEngine, blocks, write_tif

PIXEL = 0.5
SIZE = 1000


def _before_and_after_data() -> tuple[np.ndarray, np.ndarray]:
    before = blocks(SIZE)
    after = before.copy()
    after[:, :384, 384:768] += 5  # chip (0, 1) changed
    return before, after


def _shifted(path, data):
    """Half a pixel east and south: a sub-pixel misregistration, as real deliveries often have."""
    return write_tif(path, data, from_origin(ORIGIN[0] + PIXEL / 2, ORIGIN[1] - PIXEL / 2, PIXEL, PIXEL))


def _coarser(path, data):
    """The same footprint at twice the pixel size."""
    return write_tif(path, data[:, ::2, ::2].copy(), from_origin(*ORIGIN, PIXEL * 2, PIXEL * 2))


def _other_crs(path, data):
    """The same scene reprojected to Web Mercator."""
    src_transform = from_origin(*ORIGIN, PIXEL, PIXEL)
    dst_crs = "EPSG:3857"
    bounds = rasterio.transform.array_bounds(SIZE, SIZE, src_transform)  # west, south, east, north
    transform, width, height = calculate_default_transform("EPSG:32633", dst_crs, SIZE, SIZE, *bounds)
    out = np.zeros((3, height, width), dtype=np.uint8)
    reproject(
        data,
        out,
        src_transform=src_transform,
        src_crs="EPSG:32633",
        dst_transform=transform,
        dst_crs=dst_crs,
        resampling=Resampling.nearest,
        dst_nodata=0,
    )
    return write_tif(path, out, transform, crs=dst_crs, nodata=0)


@pytest.mark.parametrize("make_after", [_shifted, _coarser, _other_crs], ids=["half-pixel", "pixel-size", "crs"])
def test_report_builds_for_a_resampled_after_raster(tmp_path, capsys, make_after):
    before_data, after_data = _before_and_after_data()
    before = write_tif(tmp_path / "b.tif", before_data, from_origin(*ORIGIN, PIXEL, PIXEL))
    after = make_after(tmp_path / "a.tif", after_data)
    out = tmp_path / "o.gpkg"
    summary = describe(
        DescribeOptions(str(before), str(after), str(out), progress=False), EngineCaptioner(EchoEngine())
    )
    assert summary.resampled
    html_path = tmp_path / "report.html"
    assert main(["report", str(out), "-o", str(html_path)]) == 0, capsys.readouterr().err
    page = html_path.read_text()
    assert "imagery unavailable" not in page and "boundless" not in page
    svg = page[page.index('<svg class="map"') : page.index("</svg>")]
    assert svg.count('<image class="img-before"') == 1 and svg.count('<image class="img-after"') == 1
    found = re.findall(r'<image class="img-after"[^>]*href="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', svg)
    import base64
    import io

    from PIL import Image

    after_mosaic = np.asarray(Image.open(io.BytesIO(base64.b64decode(found[0]))))
    # the after mosaic shows the after imagery (the blocks' values), not an empty canvas
    assert 15 < float(after_mosaic.mean()) < 120


@pytest.mark.parametrize("warp", [False, True], ids=["whole-pixel-offset", "resampled"])
def test_overview_reads_only_the_part_inside_the_after_raster(tmp_path, warp):
    """An after raster starting 100 before pixels east: the overview's left tenth is nodata, the rest the imagery,
    whether it is read directly (offset) or through the WarpedVRT (a quarter pixel more makes it resampled)."""
    from ccexpert.raster_io import RasterPair
    from rasterio.windows import Window

    before = write_tif(tmp_path / "b.tif", np.full((3, SIZE, SIZE), 50, np.uint8), from_origin(*ORIGIN, PIXEL, PIXEL))
    east = 100 * PIXEL + (PIXEL / 4 if warp else 0)
    after = write_tif(
        tmp_path / "a.tif",
        np.full((3, SIZE, SIZE), 90, np.uint8),
        from_origin(ORIGIN[0] + east, ORIGIN[1], PIXEL, PIXEL),
    )
    with RasterPair(str(before), str(after)) as pair:
        assert pair.resampled is warp
        data, valid = pair.after_reader.overview(Window(0, 0, SIZE, SIZE), (100, 100))
    assert data.shape == (3, 100, 100) and valid.shape == (100, 100)
    assert not valid[:, :10].any() and valid[:, 11:].all()
    assert (data[:, :, 11:] == 90).all()


def test_the_overview_of_a_south_up_raster_is_north_up(tmp_path):
    """A south-up raster's first row is its southern edge; the overview map (north up, like its grid and scale
    bar) must show the northern strip at the top."""
    from ccexpert.report import _Rasters
    from rasterio.transform import Affine

    data = np.full((3, 768, 768), 40, np.uint8)
    data[:, -100:] = 220  # the last rows: the north of a south-up raster
    south_up = Affine(PIXEL, 0.0, ORIGIN[0], 0.0, PIXEL, ORIGIN[1] - 768 * PIXEL)
    before = write_tif(tmp_path / "b.tif", data, south_up)
    after = write_tif(tmp_path / "a.tif", data, south_up)
    from ccexpert_changes.core.grid import ChipGrid

    with rasterio.open(before) as src:
        from ccexpert.raster_io import raster_grid

        grid_hash = ChipGrid(raster_grid(src), 384).grid_hash
    meta = {"before": str(before), "after": str(after), "chip_size": 384, "grid_hash": grid_hash, "stretch": {}}
    meta["stretch"] = {"lo": [0, 0, 0], "hi": [255, 255, 255], "passthrough": True}
    rasters = _Rasters(meta, None, None)
    try:
        assert rasters.problem is None
        before_image, _ = rasters.mosaic(rasters.extent, 100)
    finally:
        rasters.close()
    pixels = np.asarray(before_image)
    assert pixels[:10].mean() > 200 and pixels[-10:].mean() < 60
