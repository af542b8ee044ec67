"""Chip reading (GDAL, no backend): padding, nodata, co-registration by resampling, shared stretch, PNG."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ccexpert_changes.core.grid import Chip, ChipGrid
from ccexpert_changes.core.png import encode_rgb
from ccexpert_changes.reader import PairReader, RasterInputError, encode_png, open_raster
from osgeo import gdal
from plugin_rasters import ORIGIN, pair, textured, write_tif


def _reader(before, after, out=128, bands=(1, 2, 3), log=None):
    return PairReader(
        open_raster(str(before), "BEFORE"),
        open_raster(str(after), "AFTER"),
        list(bands),
        out,
        log=log or (lambda m: None),
    )


def test_edge_chip_ends_at_the_raster_edge_without_padding(tmp_path):
    before, after = pair(tmp_path, h=300, w=200, changes=())
    reader = _reader(before, after, out=128)
    grid = ChipGrid(reader.grid, 128, 0)
    edge = grid.chip(2, 1)  # the last row and column moved inward: rows 172..300, cols 72..200
    assert (edge.yoff, edge.xoff) == (300 - 128, 200 - 128)
    images = reader.read_chip(edge)
    assert images.nodata_before == 0 and images.nodata_after == 0
    src = gdal.Open(str(before)).ReadAsArray(72, 172, 128, 128)
    np.testing.assert_array_equal(images.before, src)  # uint8 passes through unchanged


def test_raster_smaller_than_a_chip_is_padded_and_padding_counts_as_nodata(tmp_path):
    before, after = pair(tmp_path, h=100, w=90, changes=(), name="small")
    reader = _reader(before, after, out=128)
    # the grid refuses a raster smaller than one chip (issue 25.4); the reader still pads a window past the raster
    box = reader.grid.pixel_box(0, 0, 128, 128)
    chip = Chip(0, 0, 0, 0, 128, "r00000_c00000_00000000", box, box)
    images = reader.read_chip(chip)
    assert images.nodata_before == pytest.approx(1 - 100 * 90 / 128**2)
    assert images.nodata_after == pytest.approx(images.nodata_before)
    assert images.before.shape == (3, 128, 128) and images.before.dtype == np.uint8
    assert not images.before[:, 100:, :].any() and not images.before[:, :, 90:].any()  # padding is black
    np.testing.assert_array_equal(images.before[:, :100, :90], gdal.Open(str(before)).ReadAsArray())


def test_declared_nodata_is_counted_per_date(tmp_path):
    arr = textured(256, 256, 1)
    after = arr.copy()
    arr[:, :128, :] = 0  # top half nodata on the before date only
    gt = (ORIGIN[0], 1.0, 0, ORIGIN[1], 0, -1.0)
    b = write_tif(tmp_path / "b.tif", arr, gt, nodata=0)
    a = write_tif(tmp_path / "a.tif", after, gt, nodata=0)
    reader = _reader(b, a, out=256)
    images = reader.read_chip(ChipGrid(reader.grid, 256).chip(0, 0))
    assert images.nodata_before == pytest.approx(0.5)
    assert images.nodata_after == pytest.approx(0.0)


def test_after_with_integer_pixel_offset_is_read_directly(tmp_path):
    data = textured(400, 400, 2)
    gt_b = (ORIGIN[0], 1.0, 0, ORIGIN[1], 0, -1.0)
    gt_a = (ORIGIN[0] - 10, 1.0, 0, ORIGIN[1] + 20, 0, -1.0)  # after starts 10 px left, 20 px up
    b = write_tif(tmp_path / "b.tif", data[:, 20:320, 10:310], gt_b)
    a = write_tif(tmp_path / "a.tif", data, gt_a)
    logs = []
    reader = _reader(b, a, out=128, log=logs.append)
    assert reader.after_offset == (10, 20) and not logs  # no resampling needed
    images = reader.read_chip(ChipGrid(reader.grid, 128).chip(1, 1))
    np.testing.assert_array_equal(images.before, images.after)


@pytest.mark.parametrize("case", ["crs", "pixel_size", "subpixel_shift"])
def test_after_is_resampled_onto_the_before_chip_and_logged(tmp_path, case):
    data = textured(600, 600, 3)
    gt = (ORIGIN[0], 1.0, 0, ORIGIN[1], 0, -1.0)
    b = write_tif(tmp_path / "b.tif", data, gt)
    src = write_tif(tmp_path / "src.tif", data, gt)
    a = tmp_path / "a.tif"
    if case == "crs":
        gdal.Warp(str(a), str(src), dstSRS="EPSG:3857", resampleAlg="bilinear")
    elif case == "pixel_size":
        gdal.Warp(str(a), str(src), xRes=2.0, yRes=2.0, resampleAlg="average")
    else:
        gdal.Translate(
            str(a), str(src), outputBounds=[ORIGIN[0] + 0.4, ORIGIN[1] - 0.3, ORIGIN[0] + 600.4, ORIGIN[1] - 600.3]
        )  # relabel: same pixels, shifted
    logs = []
    reader = _reader(b, a, out=128, log=logs.append)
    assert len(logs) == 1 and "resampled" in logs[0]
    images = reader.read_chip(ChipGrid(reader.grid, 128).chip(1, 1))
    diff = np.abs(images.before.astype(int) - images.after.astype(int)).mean()
    corr = np.corrcoef(images.before.ravel().astype(float), images.after.ravel().astype(float))[0, 1]
    assert images.nodata_after == 0.0
    assert corr > 0.97, f"{case}: resampled after does not match the before footprint (corr {corr:.3f})"
    assert diff < 8, f"{case}: mean abs difference {diff:.2f}"


def test_non_overlapping_after_leaves_the_chip_all_nodata(tmp_path):
    data = textured(256, 256, 4)
    b = write_tif(tmp_path / "b.tif", data, (ORIGIN[0], 1.0, 0, ORIGIN[1], 0, -1.0))
    a = write_tif(tmp_path / "a.tif", data, (ORIGIN[0] + 10000, 1.0, 0, ORIGIN[1], 0, -1.0))
    reader = _reader(b, a, out=128)
    images = reader.read_chip(ChipGrid(reader.grid, 128).chip(0, 0))
    assert images.nodata_after == 1.0 and images.nodata_before == 0.0


def test_uint16_stretch_is_shared_so_a_brightness_shift_stays_visible(tmp_path):
    base = textured(256, 256, 5, dtype=np.uint16)
    gt = (ORIGIN[0], 1.0, 0, ORIGIN[1], 0, -1.0)
    b = write_tif(tmp_path / "b.tif", base, gt)
    a = write_tif(tmp_path / "a.tif", (base + 800).astype(np.uint16), gt)  # the whole scene got brighter
    reader = _reader(b, a, out=256)
    reader.compute_stretch(reader.grid.bounds)
    assert not reader.stretch.passthrough
    images = reader.read_chip(ChipGrid(reader.grid, 256).chip(0, 0))
    # one mapping for both dates: the after chip is visibly brighter, not re-normalised to look the same
    assert images.after.mean() > images.before.mean() + 20
    # and a per-date stretch would have hidden it: each date alone spans ~ the same 8-bit range
    assert images.before.min() <= 10 and images.after.max() >= 245


def test_wrong_band_and_unreadable_raster_are_refused_with_names(tmp_path):
    before, after = pair(tmp_path, h=64, w=64, changes=())
    with pytest.raises(RasterInputError, match="band 5 does not exist"):
        _reader(before, after, bands=(1, 2, 5))
    with pytest.raises(RasterInputError, match="three bands"):
        _reader(before, after, bands=(1, 2))
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(RasterInputError, match="AFTER raster cannot be opened"):
        open_raster(str(tmp_path / "junk.tif"), "AFTER")


def test_png_encoding_round_trips(tmp_path):
    rgb = textured(64, 96, 6)
    data = encode_png(rgb)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    gdal.FileFromMemBuffer("/vsimem/t.png", data)
    back = gdal.Open("/vsimem/t.png").ReadAsArray()
    gdal.Unlink("/vsimem/t.png")
    np.testing.assert_array_equal(back, rgb)
    assert data == encode_rgb(np.moveaxis(rgb, 0, -1))  # the same bytes describe sends (one encoder, in core)


def test_alpha_band_marks_nodata(tmp_path):
    rgb = textured(256, 256, 12)
    alpha = np.full((1, 256, 256), 255, dtype=np.uint8)
    alpha[:, :, :64] = 0  # left quarter transparent
    gt = (ORIGIN[0], 1.0, 0, ORIGIN[1], 0, -1.0)
    path = write_tif(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]), gt)
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
    ds = None
    plain = write_tif(tmp_path / "rgb.tif", rgb, gt)
    reader = _reader(path, plain, out=256)
    images = reader.read_chip(ChipGrid(reader.grid, 256).chip(0, 0))
    assert images.nodata_before == pytest.approx(0.25) and images.nodata_after == 0.0
    assert not images.before[:, :, :64].any()


def test_open_pair_checks_the_pair_in_order_and_names_the_raster(tmp_path):
    """``open_pair`` (the plan's one call into the reader): the bands default to the raster's own, a missing CRS is
    named before the bands are looked at, and a rotated raster is refused by its pixel grid, the reader's last
    step, even when AFTER would first have been resampled onto it."""
    from ccexpert_changes.reader import DEFAULT_BANDS, open_pair

    gt = (ORIGIN[0], 1.0, 0.0, ORIGIN[1], 0.0, -1.0)
    grey = write_tif(tmp_path / "grey.tif", textured(64, 64, bands=1), gt)
    grey_after = write_tif(tmp_path / "grey_a.tif", textured(64, 64, 1, bands=1), gt)
    for bands in (None, DEFAULT_BANDS):  # nothing chosen, or the shown default on a one-band raster: grey
        assert open_pair(str(grey), str(grey_after), bands, 64, log=lambda m: None).bands == [1, 1, 1]
    before, after = pair(tmp_path, h=64, w=64, changes=())
    bare = write_tif(tmp_path / "bare.tif", textured(64, 64), gt, wkt="")
    with pytest.raises(RasterInputError, match="AFTER raster has no coordinate reference system"):
        open_pair(str(before), str(bare), [1, 2, 9], 64)
    with pytest.raises(RasterInputError, match="BEFORE raster cannot be opened"):
        open_pair(str(tmp_path / "missing.tif"), str(after), None, 64)
    rotated = write_tif(tmp_path / "rotated.tif", textured(64, 64), (ORIGIN[0], 1.0, 0.2, ORIGIN[1], 0.0, -1.0))
    coarse = write_tif(tmp_path / "coarse.tif", textured(32, 32), (ORIGIN[0], 2.0, 0.0, ORIGIN[1], 0.0, -2.0))
    logs: list[str] = []
    for other in (rotated, coarse):  # the same grid, or another pixel size: refused without resampling first
        with pytest.raises(RasterInputError, match="BEFORE raster: rotated or sheared rasters are not supported"):
            open_pair(str(rotated), str(other), None, 64, log=logs.append)
    with pytest.raises(RasterInputError, match="AFTER raster: rotated or sheared rasters are not supported"):
        open_pair(str(before), str(rotated), None, 64, log=logs.append)
    far_off = write_tif(tmp_path / "inf.tif", textured(64, 64), (math.inf, 1.0, 0.0, ORIGIN[1], 0.0, -1.0))
    plain = write_tif(tmp_path / "plain.tif", textured(64, 64, 2), gt)
    for other in (plain, coarse):  # not a Python OverflowError from the pixel offset
        with pytest.raises(RasterInputError, match="BEFORE raster: raster origin_x must be finite"):
            open_pair(str(far_off), str(other), None, 64, log=logs.append)
    assert not logs  # no "AFTER raster resampled" line before a refusal
