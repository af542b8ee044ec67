"""Windowed reads of a before/after raster pair on the before raster's chip grid (rasterio).

The before raster defines the grid (``ccexpert_changes.core.grid``). The after raster is read over exactly the
same footprint: directly when it sits on the same pixel grid (same CRS and pixel size, origin offset by whole
pixels), else through a ``WarpedVRT`` aligned to the before grid, which resamples window by window (never the
whole raster). Every read is one chip window, so memory does not grow with the raster size.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import rasterio
from ccexpert_changes.core.grid import Bounds, Chip, RasterGrid, grid_offset
from ccexpert_changes.core.stretch import Stretch, compute_stretch, valid_mask
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from .aoi import described_area

log = logging.getLogger(__name__)


class RasterReadError(Exception):
    """A raster read failed (truncated or corrupt file, I/O error); the message names raster, pixels and reason."""

    def __init__(self, message: str, where: str = "", reason: str = ""):
        super().__init__(message)
        self.where, self.reason = where, reason


def _reason(exc: BaseException) -> str:
    """GDAL's own message: rasterio puts it in the cause of a generic "Read failed" error."""
    cause = exc.__cause__ or exc.__context__
    text = str(cause) if cause is not None and str(cause) else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def _read(src, label: str, path: str, indexes, window: Window, **kwargs) -> np.ndarray:
    try:
        return src.read(indexes, window=window, **kwargs)
    except (rasterio.errors.RasterioError, RuntimeError, OSError) as exc:
        col0, row0 = int(window.col_off), int(window.row_off)
        where = f"pixels x {col0}-{col0 + int(window.width)}, y {row0}-{row0 + int(window.height)}"
        reason = _reason(exc)
        raise RasterReadError(f"cannot read the {label} raster {path} at {where}: {reason}", where, reason) from None


STRETCH_SAMPLE_PIXELS = 1024  # longest side of the decimated read used for the stretch percentiles


def crs_string(crs: CRS | None) -> str:
    """ "EPSG:32615" when the CRS has an authority code (what QGIS ``authid()`` gives), else WKT: the string
    that goes into the grid hash."""
    if crs is None:
        return ""
    authority = crs.to_authority()
    return f"{authority[0]}:{authority[1]}" if authority else crs.to_wkt()


def raster_grid(src: rasterio.io.DatasetReader) -> RasterGrid:
    if src.crs is None:
        raise ValueError(f"{src.name}: raster has no CRS (georeference it first)")
    return RasterGrid.from_geotransform(src.transform.to_gdal(), src.width, src.height, crs_string(src.crs))


def parse_bands(text: str | None, count: int, name: str) -> list[int]:
    """1-based band indexes for R, G, B (default 1,2,3); ValueError naming the raster when they do not exist."""
    bands = [int(b) for b in text.split(",")] if text else [1, 2, 3]
    if len(bands) != 3:
        raise ValueError(f"--bands needs three band numbers (R,G,B), got {text!r}")
    if any(b < 1 or b > count for b in bands):
        hint = " (single-band raster: use --bands 1,1,1)" if count == 1 else ""
        raise ValueError(f"{name} raster has {count} band(s); bands {bands} do not exist{hint}")
    return bands


@dataclass
class ChipRead:
    array: np.ndarray  # (3, size, size) in the raster's dtype, padding filled with 0
    valid: np.ndarray  # (size, size) bool, False for nodata and padding


class DateReader:
    """Reads chips of one date on the before grid (directly, shifted, or through a WarpedVRT)."""

    def __init__(
        self,
        src,
        bands: list[int],
        nodata: float | None,
        grid: RasterGrid,
        *,
        warp: bool,
        offset: tuple[int, int] = (0, 0),
        alpha_band: int | None = None,
        label: str = "",
        path: str = "",
    ):
        self.src = src  # a DatasetReader or a WarpedVRT aligned to the before grid
        self.label = label  # "before" / "after", for error messages
        self.path = path
        self.bands = bands
        self.nodata = nodata
        self.grid = grid
        self.warp = warp
        self.offset = offset  # (dx, dy): after pixel = before pixel + offset, for same-grid rasters
        self.alpha_band = alpha_band

    def read(self, chip: Chip) -> ChipRead:
        size = chip.size
        x0, y0 = chip.xoff + self.offset[0], chip.yoff + self.offset[1]
        # intersect the chip window with the readable raster
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + size, self.src.width), min(y0 + size, self.src.height)
        dtype = np.dtype(self.src.dtypes[self.bands[0] - 1])
        array = np.zeros((3, size, size), dtype=dtype)
        valid = np.zeros((size, size), dtype=bool)
        if cx1 <= cx0 or cy1 <= cy0:
            return ChipRead(array, valid)
        window = Window(cx0, cy0, cx1 - cx0, cy1 - cy0)
        indexes = list(self.bands) + ([self.alpha_band] if self.alpha_band else [])
        data = _read(self.src, self.label, self.path, indexes, window)
        inner = data[:3]
        inner_valid = valid_mask(inner, self.nodata)
        if self.alpha_band:
            inner_valid &= data[3] > 0
        sl = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
        array[:, sl[0], sl[1]] = inner
        valid[sl] = inner_valid
        return ChipRead(array, valid)

    def overview(self, window: Window, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """A downsampled (averaged) read of ``window`` (before pixels) into ``shape`` (height, width): (3, h, w) array
        and validity. Only the part inside the readable raster is read (a WarpedVRT refuses boundless reads), so
        it works the same for a raster on the before grid, offset by whole pixels, or resampled."""
        height, width = shape
        array = np.zeros((3, height, width), dtype=np.dtype(self.src.dtypes[self.bands[0] - 1]))
        valid = np.zeros((height, width), dtype=bool)
        x0, y0 = window.col_off + self.offset[0], window.row_off + self.offset[1]
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + window.width, self.src.width), min(y0 + window.height, self.src.height)
        if cx1 <= cx0 or cy1 <= cy0 or window.width <= 0 or window.height <= 0:
            return array, valid
        sx, sy = width / window.width, height / window.height  # output pixels per before pixel
        ox0, oy0 = round((cx0 - x0) * sx), round((cy0 - y0) * sy)
        ox1, oy1 = max(ox0 + 1, round((cx1 - x0) * sx)), max(oy0 + 1, round((cy1 - y0) * sy))
        ox1, oy1 = min(ox1, width), min(oy1, height)
        indexes = list(self.bands) + ([self.alpha_band] if self.alpha_band else [])
        data = _read(
            self.src,
            self.label,
            self.path,
            indexes,
            Window(cx0, cy0, cx1 - cx0, cy1 - cy0),
            out_shape=(len(indexes), oy1 - oy0, ox1 - ox0),
            resampling=Resampling.average,
        )
        ok = valid_mask(data[:3], self.nodata)
        if self.alpha_band:
            ok &= data[3] > 0
        array[:, oy0:oy1, ox0:ox1] = data[:3]
        valid[oy0:oy1, ox0:ox1] = ok
        return array, valid

    def sample(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """A decimated read of ``window`` (before pixels) for the stretch: (3, h, w) array and validity."""
        x0, y0 = window.col_off + self.offset[0], window.row_off + self.offset[1]
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1 = min(x0 + window.width, self.src.width)
        cy1 = min(y0 + window.height, self.src.height)
        if cx1 <= cx0 or cy1 <= cy0:
            return np.zeros((3, 0, 0)), np.zeros((0, 0), dtype=bool)
        w, h = cx1 - cx0, cy1 - cy0
        scale = max(1.0, max(w, h) / STRETCH_SAMPLE_PIXELS)
        shape = (max(1, int(h / scale)), max(1, int(w / scale)))
        indexes = list(self.bands) + ([self.alpha_band] if self.alpha_band else [])
        data = _read(
            self.src,
            self.label,
            self.path,
            indexes,
            Window(cx0, cy0, w, h),
            out_shape=(len(indexes), *shape),
            resampling=Resampling.nearest,
        )
        ok = valid_mask(data[:3], self.nodata)
        if self.alpha_band:
            ok &= data[3] > 0
        return data[:3], ok


@dataclass(frozen=True)
class DescribedArea:
    """What a run describes of a pair: the rasters' common footprint, cut to the AOI when there is one (before CRS);
    its WKT for the run metadata (None without an AOI: the whole footprint); the one 8-bit stretch sampled over it."""

    geometry: BaseGeometry
    wkt: str | None
    stretch: Stretch

    @property
    def bounds(self) -> Bounds:
        return self.geometry.bounds


class RasterPair:
    """The before/after rasters opened for chip reads on the before grid. Use as a context manager (a run opens
    them with :func:`open_pair`: checked, over the area it describes)."""

    def __init__(
        self,
        before_path: str,
        after_path: str,
        bands: str | None = None,
        nodata: float | None = None,
        resampling: Resampling = Resampling.bilinear,
    ):
        self.before_path, self.after_path = str(before_path), str(after_path)
        self._open: list[rasterio.io.DatasetReader | WarpedVRT] = []
        try:
            self.before = self._keep(_open(self.before_path, "before"))
            self.after = self._keep(_open(self.after_path, "after"))
            self.grid = raster_grid(self.before)
            if self.after.crs is None:
                raise ValueError(f"{self.after_path}: after raster has no CRS (georeference it first)")
            self.bands_before = parse_bands(bands, self.before.count, "before")
            self.bands_after = parse_bands(bands, self.after.count, "after")
            self.nodata_before = self.before.nodata if self.before.nodata is not None else nodata
            self.nodata_after = self.after.nodata if self.after.nodata is not None else nodata
            self.overlap = self._overlap()
            self.resampled = False
            self.resample_reason: str | None = None
            self.before_reader = DateReader(
                self.before,
                self.bands_before,
                self.nodata_before,
                self.grid,
                warp=False,
                label="before",
                path=self.before_path,
            )
            self.after_reader = self._after_reader(resampling)
        except Exception:
            self.close()
            raise

    def _keep(self, dataset):
        self._open.append(dataset)
        return dataset

    def _overlap(self) -> Bounds:
        """Intersection of both footprints in the before CRS; ValueError when they do not overlap."""
        bb = _ordered(self.before.bounds)  # a south-up raster's "bottom" is above its "top"
        ab = transform_bounds(self.after.crs, self.before.crs, *_ordered(self.after.bounds), densify_pts=21)
        box = (max(bb[0], ab[0]), max(bb[1], ab[1]), min(bb[2], ab[2]), min(bb[3], ab[3]))
        if box[0] >= box[2] or box[1] >= box[3]:
            raise ValueError(
                f"before and after rasters do not overlap: before covers {tuple(round(v, 3) for v in bb)} and "
                f"after covers {tuple(round(v, 3) for v in ab)} in {crs_string(self.before.crs)}"
            )
        return box

    def _same_grid_offset(self) -> tuple[int, int] | None:
        """(dx, dy) in whole pixels when the after raster shares the before pixel grid, else None (``core.grid``'s
        rule, the plugin's too)."""
        if self.before.crs != self.after.crs:
            return None
        offset = grid_offset(self.before.transform.to_gdal(), self.after.transform.to_gdal())
        return offset.whole if offset is not None else None

    def _after_reader(self, resampling: Resampling) -> DateReader:
        offset = self._same_grid_offset()
        if offset is not None:
            return DateReader(
                self.after,
                self.bands_after,
                self.nodata_after,
                self.grid,
                warp=False,
                offset=offset,
                label="after",
                path=self.after_path,
            )
        self.resampled = True
        reasons = []
        if self.before.crs != self.after.crs:
            reasons.append(f"CRS {crs_string(self.after.crs)} vs {crs_string(self.before.crs)}")
        if (self.after.res[0], self.after.res[1]) != (self.before.res[0], self.before.res[1]):
            reasons.append(f"pixel size {self.after.res} vs {self.before.res}")
        if not reasons:
            reasons.append("grids offset by a fraction of a pixel")
        log.warning(
            "after raster is not on the before grid (%s): resampling it onto each before chip (%s)",
            "; ".join(reasons),
            resampling.name,
        )
        self.resample_reason = "; ".join(reasons)
        options = {
            "crs": self.before.crs,
            "transform": self.before.transform,
            "width": self.before.width,
            "height": self.before.height,
            "resampling": resampling,
        }
        if self.nodata_after is not None:
            vrt = WarpedVRT(self.after, src_nodata=self.nodata_after, nodata=self.nodata_after, **options)
            return DateReader(
                self._keep(vrt),
                self.bands_after,
                self.nodata_after,
                self.grid,
                warp=True,
                label="after",
                path=self.after_path,
            )
        vrt = WarpedVRT(self.after, add_alpha=True, **options)  # alpha marks where the after raster has data
        return DateReader(
            self._keep(vrt),
            self.bands_after,
            None,
            self.grid,
            warp=True,
            alpha_band=vrt.count,
            label="after",
            path=self.after_path,
        )

    def window_of(self, bounds: Bounds) -> Window:
        """Before-pixel window (whole pixels) covering ``bounds``."""
        inv = ~self.before.transform
        xs, ys = zip(*(inv @ (x, y) for x in (bounds[0], bounds[2]) for y in (bounds[1], bounds[3])), strict=True)
        c0, r0 = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
        c1, r1 = min(self.before.width, math.ceil(max(xs))), min(self.before.height, math.ceil(max(ys)))
        return Window(c0, r0, max(0, c1 - c0), max(0, r1 - r0))

    def check_readable(self) -> None:
        """Read a few pixels at the corners and the centre of both rasters (every band used): a truncated or
        corrupt file is refused with ValueError before anything is written, instead of failing chips later. Cheap
        (a handful of blocks); a file damaged elsewhere still fails only the chips over the damage."""
        for label, path, src, bands in (
            ("before", self.before_path, self.before, self.bands_before),
            ("after", self.after_path, self.after, self.bands_after),
        ):
            w, h = src.width, src.height
            spots = {(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1), (w // 2, h // 2)}
            for x, y in sorted(spots):
                try:
                    _read(src, label, path, sorted(set(bands)), Window(x, y, 1, 1))
                except RasterReadError as exc:
                    raise ValueError(
                        f"{label} raster {path} cannot be read at {exc.where} (truncated or corrupt?): {exc.reason}"
                    ) from None

    def stretch(self, bounds: Bounds) -> Stretch:
        """The one 8-bit stretch for both dates, from decimated reads of both over ``bounds``; ValueError when a
        raster cannot be read there."""
        dtypes = {self.before.dtypes[b - 1] for b in self.bands_before} | {
            self.after.dtypes[b - 1] for b in self.bands_after
        }
        if dtypes == {"uint8"}:
            return Stretch.identity(3)
        window = self.window_of(bounds)
        samples = []
        for reader in (self.before_reader, self.after_reader):
            try:
                data, ok = reader.sample(window)
            except RasterReadError as exc:
                raise ValueError(f"{exc} (truncated or corrupt?)") from None
            data = data.astype(np.float64)
            data[:, ~ok] = np.nan  # validity decided here (alpha band included); NaN is nodata for the stretch
            samples.append((data, None))
        return compute_stretch(samples)

    def close(self) -> None:
        for dataset in reversed(self._open):
            dataset.close()
        self._open.clear()

    def __enter__(self) -> RasterPair:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_pair(
    before_path: str,
    after_path: str,
    *,
    bands: str | None = None,
    nodata: float | None = None,
    aoi: str | None = None,
    aoi_layer: str | None = None,
) -> tuple[RasterPair, DescribedArea]:
    """The pair a run reads, over the area it describes: both rasters opened and checked (bands, CRS, overlap), a
    few pixels of each read (a truncated file is refused here, not chip by chip), the area described
    (``aoi.described_area``: the AOI read, repaired, projected and cut to the common footprint) and the one stretch
    sampled over it. ValueError naming what is wrong, with the rasters closed again."""
    pair = RasterPair(before_path, after_path, bands=bands, nodata=nodata)
    try:
        pair.check_readable()
        area, area_wkt = described_area(aoi, aoi_layer, pair.before.crs, pair.overlap, abs(pair.before.transform.a))
        return pair, DescribedArea(area, area_wkt, pair.stretch(area.bounds))
    except BaseException:
        pair.close()
        raise


def _ordered(bounds) -> Bounds:
    """(xmin, ymin, xmax, ymax) of rasterio bounds, whichever way the raster's rows and columns run."""
    left, bottom, right, top = bounds
    return (min(left, right), min(bottom, top), max(left, right), max(bottom, top))


def _open(path: str, name: str):
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise ValueError(f"{name} raster {path}: cannot open ({exc})") from None
