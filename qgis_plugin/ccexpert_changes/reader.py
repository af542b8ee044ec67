"""Chip reading with GDAL (osgeo + numpy; from QGIS only the translation helper ``about.tr``, through qgis.PyQt), shared
by the task (through ``chips.ChipEncoder``, the run loop's ``prepare``), the dialog's chip count and
``bench/bench_plugin_read.py``.

Datasets are opened inside the running task from the layers' source strings, so the user's layer providers
are never touched from a worker thread. Every read is a window: memory depends on the chip size, never on
the raster size. The after raster is read over exactly the before chip's footprint: when its CRS, pixel size
or pixel alignment differ, it is warped onto the before raster's pixel grid through a lazy VRT (only the
windows that are read get resampled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, osr

from .about import tr
from .core.grid import Bounds, Chip, RasterGrid, grid_offset, north_up_plain
from .core.png import encode_rgb
from .core.stretch import Stretch, compute_stretch, nodata_fraction, valid_mask

DEFAULT_BANDS = [1, 2, 3]  # the BANDS parameter's shown default
STRETCH_SAMPLE_PX = 512  # longest side of the decimated read the stretch percentiles come from (~260k px)


class RasterInputError(ValueError):
    """Bad raster input; the message names the raster and what is wrong."""


@dataclass
class ChipImages:
    """One chip pair ready to send: 8-bit RGB ``(3, out, out)`` arrays and per-date nodata fractions."""

    chip: Chip
    before: np.ndarray
    after: np.ndarray
    nodata_before: float
    nodata_after: float


def open_raster(source: str, label: str) -> gdal.Dataset:
    """Open a GDAL-readable source (a file path, optionally with QGIS ``|option`` suffixes stripped)."""
    path = source.split("|")[0]
    try:
        ds = gdal.Open(path, gdal.GA_ReadOnly)
    except RuntimeError as exc:  # when another component switched GDAL exceptions on
        raise RasterInputError(tr("{0} raster cannot be opened by GDAL ({1}): {2}").format(label, path, exc)) from exc
    if ds is None:
        raise RasterInputError(
            tr("{0} raster cannot be opened by GDAL ({1}): {2}").format(label, path, gdal.GetLastErrorMsg())
        )
    return ds


def raster_grid(ds: gdal.Dataset, label: str) -> RasterGrid:
    srs = ds.GetSpatialRef()
    if srs is None:
        raise RasterInputError(tr("{0} raster has no coordinate reference system; assign one first").format(label))
    try:
        return RasterGrid.from_geotransform(ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize, crs_id(srs))
    except ValueError as exc:
        raise RasterInputError(tr("{0} raster: {1}").format(label, exc)) from exc


def crs_id(srs: osr.SpatialReference) -> str:
    """``AUTHORITY:CODE`` when the CRS has one (the form QGIS' ``authid()`` gives), else WKT."""
    srs = srs.Clone()
    if srs.GetAuthorityCode(None) is None:
        srs.AutoIdentifyEPSG()
    name, code = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
    return f"{name}:{code}" if name and code else srs.ExportToWkt()


def check_bands(ds: gdal.Dataset, bands: list[int], label: str) -> list[int]:
    """Three 1-based band numbers (one band is repeated as grey)."""
    if len(bands) == 1:
        bands = bands * 3
    if len(bands) != 3:
        raise RasterInputError(
            tr("BANDS must name three bands (R, G, B) or one (grey), got {0}: {1}").format(len(bands), bands)
        )
    for b in bands:
        if not 1 <= b <= ds.RasterCount:
            raise RasterInputError(
                tr("{0} raster has {1} band(s); band {2} does not exist").format(label, ds.RasterCount, b)
            )
    return list(bands)


def default_bands(ds: gdal.Dataset) -> list[int]:
    return [1, 2, 3] if ds.RasterCount >= 3 else [1, 1, 1]


def open_pair(before_source: str, after_source: str, bands: list[int] | None, out_size: int, log=print) -> PairReader:
    """The pair a run reads: BEFORE and AFTER opened from their layers' sources and checked (:class:`PairReader`),
    on ``bands`` (None, or the shown default on a one-band raster: the raster's own). RasterInputError naming
    the raster and what is wrong."""
    before = open_raster(before_source, "BEFORE")
    after = open_raster(after_source, "AFTER")
    if not bands or (bands == DEFAULT_BANDS and before.RasterCount < 3):
        bands = default_bands(before)
    return PairReader(before, after, bands, out_size, log=log)


class PairReader:
    """Reads chip pairs of ``before``/``after`` on the before raster's grid. ``log`` receives one line per
    decision worth telling the user (resampling, stretch). A run opens it with :func:`open_pair`.

    The constructor checks the pair in the order a run reports problems: both georeferenced, the bands, AFTER placed
    on BEFORE's pixels (from the GDAL geotransforms: read directly at a whole-pixel offset, else warped), and last
    the two pixel grids in core terms (``core.grid.RasterGrid``: a rotated raster is refused there), which the chip
    grid, the stretch window and the plan's footprints use."""

    def __init__(self, before: gdal.Dataset, after: gdal.Dataset, bands: list[int], out_size: int, log=print):
        self.before = before
        self.after_src = after
        for ds, label in ((before, "BEFORE"), (after, "AFTER")):
            if ds.GetSpatialRef() is None:
                raise RasterInputError(
                    tr("{0} raster has no coordinate reference system; assign one first").format(label)
                )
        self.bands = check_bands(before, bands, "BEFORE")
        check_bands(after, bands, "AFTER")
        self.out_size = int(out_size)
        self.nodata_before = before.GetRasterBand(self.bands[0]).GetNoDataValue()
        self.nodata_after = after.GetRasterBand(self.bands[0]).GetNoDataValue()
        self.after, self.after_offset = self._align_after(after, log)
        self.mask_before = _mask_band(before, self.bands[0])
        self.mask_after = _mask_band(self.after, self.bands[0])
        self.stretch = Stretch.identity(3)
        self.grid, self.after_grid = raster_grid(before, "BEFORE"), raster_grid(after, "AFTER")

    # -- co-registration ----------------------------------------------------------------------------------
    def _align_after(self, after: gdal.Dataset, log):
        """(dataset to read, (dx, dy) pixel offset of the before grid into it), from the GDAL geotransforms."""
        b, a = self.before.GetGeoTransform(), after.GetGeoTransform()
        if not (north_up_plain(b) and north_up_plain(a)):  # rotated or not finite: the raster grids refuse it
            return after, (0, 0)
        before_srs, after_srs = self.before.GetSpatialRef(), after.GetSpatialRef()
        same_crs = _same_crs(before_srs, after_srs)
        offset = grid_offset(b, a) if same_crs else None
        if offset is not None:
            if offset.whole is not None:
                return after, offset.whole
            reason = f"pixel grids are offset by ({offset.dx % 1:.3f}, {offset.dy % 1:.3f}) px"
        else:
            reason = (
                f"CRS {crs_id(after_srs)} vs {crs_id(before_srs)}"
                if not same_crs
                else f"pixel size {a[1]:g} x {abs(a[5]):g} vs {b[1]:g} x {abs(b[5]):g}"
            )
        if b[5] > 0:
            raise RasterInputError(tr("BEFORE raster is south-up; resampling AFTER onto it is not supported"))
        width, height = self.before.RasterXSize, self.before.RasterYSize
        options = {"srcNodata": self.nodata_after} if self.nodata_after is not None else {}
        warped = gdal.Warp(
            "",
            after,
            format="VRT",
            dstSRS=before_srs.ExportToWkt(),
            outputBounds=(b[0], b[3] + height * b[5], b[0] + width * b[1], b[3]),  # north-up: checked above
            width=width,
            height=height,
            resampleAlg="bilinear",
            dstAlpha=True,
            **options,
        )
        if warped is None:
            raise RasterInputError(
                tr("AFTER raster cannot be resampled onto the BEFORE grid: {0}").format(gdal.GetLastErrorMsg())
            )
        log(
            tr("AFTER raster resampled onto the BEFORE pixel grid ({0}; bilinear, read lazily per chip)").format(reason)
        )
        return warped, (0, 0)

    # -- stretch ------------------------------------------------------------------------------------------
    def compute_stretch(self, bounds: Bounds) -> Stretch:
        """One 8-bit stretch over ``bounds`` shared by both dates (identity for uint8)."""
        dtypes = {self.before.GetRasterBand(b).DataType for b in self.bands}
        dtypes |= {self.after_src.GetRasterBand(b).DataType for b in self.bands}
        if dtypes == {gdal.GDT_Byte}:
            self.stretch = Stretch.identity(3)
            return self.stretch
        c0, r0, c1, r1 = self._pixel_window(bounds)
        w, h = c1 - c0, r1 - r0
        scale = min(1.0, STRETCH_SAMPLE_PX / max(w, h))
        bw, bh = max(1, int(w * scale)), max(1, int(h * scale))
        samples = []
        for which in ("before", "after"):
            arr, valid = self._read(which, c0, r0, w, h, bw, bh, resample=gdal.GRIORA_NearestNeighbour)
            nodata = self.nodata_before if which == "before" else self.nodata_after
            arr = arr.astype(np.float32)
            arr[:, ~valid] = np.nan  # NaN counts as nodata in valid_mask (covers padding and mask bands)
            samples.append((arr, nodata))
        self.stretch = compute_stretch(samples)
        return self.stretch

    def _pixel_window(self, bounds: Bounds) -> tuple[int, int, int, int]:
        g = self.grid
        ca, ra = g.to_pixel(bounds[0], bounds[1])
        cb, rb = g.to_pixel(bounds[2], bounds[3])
        c0 = max(0, math.floor(min(ca, cb)))
        c1 = min(g.width, math.ceil(max(ca, cb)))
        r0 = max(0, math.floor(min(ra, rb)))
        r1 = min(g.height, math.ceil(max(ra, rb)))
        if c1 <= c0 or r1 <= r0:
            raise RasterInputError(tr("The area of interest does not cover any pixel of the BEFORE raster"))
        return c0, r0, c1, r1

    # -- chips --------------------------------------------------------------------------------------------
    def read_chip(self, chip: Chip) -> ChipImages:
        n = self.out_size
        images, fractions = [], []
        for which in ("before", "after"):
            arr, valid = self._read(which, chip.xoff, chip.yoff, chip.size, chip.size, n, n)
            all_valid = bool(valid.all())
            if self.stretch.passthrough and arr.dtype == np.uint8 and all_valid:
                images.append(arr)  # 8-bit and complete: nothing to map or blank out
            else:
                images.append(self.stretch.apply(arr, None if all_valid else valid))
            fractions.append(0.0 if all_valid else nodata_fraction(valid))
        return ChipImages(chip, images[0], images[1], fractions[0], fractions[1])

    def nodata_estimate(self, chip: Chip, samples: int = 16) -> tuple[float, float]:
        """Nodata fractions of a chip's two dates from a ``samples`` x ``samples`` nearest-neighbour read: cheap
        enough to count, before a run, the chips the nodata rule will skip."""
        fractions = []
        for which in ("before", "after"):
            _, valid = self._read(
                which,
                chip.xoff,
                chip.yoff,
                chip.size,
                chip.size,
                samples,
                samples,
                resample=gdal.GRIORA_NearestNeighbour,
            )
            fractions.append(0.0 if valid.all() else nodata_fraction(valid))
        return fractions[0], fractions[1]

    def _read(
        self, which: str, xoff: int, yoff: int, w: int, h: int, out_w: int, out_h: int, resample=gdal.GRIORA_Bilinear
    ) -> tuple[np.ndarray, np.ndarray]:
        """Window ``[xoff, xoff+w) x [yoff, yoff+h)`` of the before grid as ``(3, out_h, out_w)`` plus a validity
        mask; the part outside the raster is padding (zeros, invalid)."""
        if which == "before":
            ds, (dx, dy), mask, nodata = self.before, (0, 0), self.mask_before, self.nodata_before
        else:
            ds, (dx, dy), mask, nodata = self.after, self.after_offset, self.mask_after, self.nodata_after
        x0, y0 = xoff + dx, yoff + dy
        cx0, cy0 = max(0, x0), max(0, y0)
        cx1, cy1 = min(ds.RasterXSize, x0 + w), min(ds.RasterYSize, y0 + h)
        if cx1 <= cx0 or cy1 <= cy0:  # entirely outside: all padding
            dtype = gdal_array_dtype(ds.GetRasterBand(self.bands[0]).DataType)
            return np.zeros((3, out_h, out_w), dtype=dtype), np.zeros((out_h, out_w), dtype=bool)
        sx, sy = out_w / w, out_h / h
        # destination rectangle of the in-raster part, in output pixels
        ox0, oy0 = round((cx0 - x0) * sx), round((cy0 - y0) * sy)
        ox1, oy1 = round((cx1 - x0) * sx), round((cy1 - y0) * sy)
        bw, bh = max(1, ox1 - ox0), max(1, oy1 - oy0)
        resample = gdal.GRIORA_NearestNeighbour if (bw == cx1 - cx0 and bh == cy1 - cy0) else resample
        data = ds.ReadAsArray(
            cx0, cy0, cx1 - cx0, cy1 - cy0, band_list=self.bands, buf_xsize=bw, buf_ysize=bh, resample_alg=resample
        )
        if data is None:
            raise RasterInputError(
                tr("{0} raster read failed at pixel ({1}, {2}): {3}").format(
                    which.upper(), cx0, cy0, gdal.GetLastErrorMsg()
                )
            )
        if nodata is None and mask is None and not np.issubdtype(data.dtype, np.floating):
            inner_valid = None  # every pixel holds data: skip the per-pixel test
        else:
            inner_valid = valid_mask(data, nodata)
        if mask is not None:  # alpha band or GDAL mask (the warped VRT's alpha marks where AFTER has data)
            m = mask.ReadAsArray(cx0, cy0, cx1 - cx0, cy1 - cy0, buf_xsize=bw, buf_ysize=bh)
            inner_valid &= m > 0
        if (bh, bw) == (out_h, out_w):  # the whole window is inside the raster: no padding copy
            return data, (np.ones((out_h, out_w), dtype=bool) if inner_valid is None else inner_valid)
        out = np.zeros((3, out_h, out_w), dtype=data.dtype)
        valid = np.zeros((out_h, out_w), dtype=bool)
        out[:, oy0 : oy0 + bh, ox0 : ox0 + bw] = data
        valid[oy0 : oy0 + bh, ox0 : ox0 + bw] = True if inner_valid is None else inner_valid
        return out, valid


def _mask_band(ds: gdal.Dataset, band_no: int):
    """The GDAL mask band (alpha band, internal or .msk mask) when validity is not just a nodata value."""
    band = ds.GetRasterBand(band_no)
    flags = band.GetMaskFlags()
    if flags & (gdal.GMF_ALL_VALID | gdal.GMF_NODATA):
        return None
    return band.GetMaskBand()


def gdal_array_dtype(gdal_type: int):
    from osgeo import gdal_array

    return gdal_array.GDALTypeCodeToNumericTypeCode(gdal_type)


def _same_crs(a: osr.SpatialReference, b: osr.SpatialReference) -> bool:
    return bool(a.IsSame(b, ["IGNORE_DATA_AXIS_TO_SRS_AXIS_MAPPING=YES", "CRITERION=EQUIVALENT"]))


def encode_png(rgb: np.ndarray) -> bytes:
    """8-bit ``(3, h, w)`` -> PNG bytes, written by the clients' one encoder (``core.png.encode_rgb``: "Up"-filtered
    rows at zlib level 1, which the server decodes fastest; about 2x faster to write than GDAL's PNG driver, which
    picks no filter a caller can set)."""
    return encode_rgb(np.moveaxis(np.asarray(rgb, dtype=np.uint8), 0, -1))  # a view; the encoder copies once
