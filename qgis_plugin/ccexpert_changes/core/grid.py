"""The chip grid shared by the QGIS plugin and ``ccexpert describe`` (pure Python, no QGIS, no torch).

The grid is snapped to the *before* raster's pixels: chip (row, col) covers before-raster pixels
``[x(col), x(col)+chip) x [y(row), y(row)+chip)`` with ``x(i) = min(i*stride, width - chip)``,
``stride = chip_size - overlap``: chips start on pixel boundaries and the last row and column are moved inward to
end at the raster's edge, so no chip reaches past the raster; a raster smaller than one chip is refused.
Tile ids carry a hash of the grid so that resuming a run on a different grid can never match
old tiles by accident.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Bounds = tuple[float, float, float, float]  # (xmin, ymin, xmax, ymax)


def _canonical_float(value: float) -> str:
    """12 significant digits: identical for the same raster read through GDAL, QGIS or rasterio, whose
    geotransforms can differ in the last bits, while still telling apart grids offset by a micrometre."""
    return format(float(value), ".12g")


def normalise_crs(crs: str) -> str:
    """The CRS string that goes into the grid hash. Pass an authority id ("EPSG:32615") when the CRS has
    one (QGIS ``authid()``, rasterio ``crs.to_string()``), else WKT; case and surrounding spaces are ignored
    for authority ids."""
    text = (crs or "").strip()
    if ":" in text and len(text) < 32 and " " not in text:
        return text.upper()
    return text


@dataclass(frozen=True)
class RasterGrid:
    """Pixel grid of a north-up (or south-up) raster: origin is the outer corner of pixel (0, 0).

    ``pixel_width`` / ``pixel_height`` are the signed geotransform terms (``pixel_height`` is negative for
    the usual north-up raster).
    """

    origin_x: float
    origin_y: float
    pixel_width: float
    pixel_height: float
    width: int
    height: int
    crs: str

    def __post_init__(self) -> None:
        if int(self.width) != self.width or int(self.height) != self.height:
            raise ValueError(f"raster size must be whole pixels, got {self.width}x{self.height}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"raster size must be positive, got {self.width}x{self.height}")
        for name in ("origin_x", "origin_y", "pixel_width", "pixel_height"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"raster {name} must be finite, got {getattr(self, name)!r}")
        if self.pixel_width == 0 or self.pixel_height == 0:
            raise ValueError(f"pixel size must be non-zero, got {self.pixel_width} x {self.pixel_height}")

    @classmethod
    def from_geotransform(cls, gt: tuple[float, ...], width: int, height: int, crs: str) -> RasterGrid:
        """From a GDAL geotransform ``(x0, pixel_w, rot_x, y0, rot_y, pixel_h)``; rotated/sheared grids are
        refused because a rotated chip is not an axis-aligned polygon in the raster's CRS."""
        if len(gt) != 6:
            raise ValueError(f"a geotransform has 6 terms, got {len(gt)}")
        x0, pixel_w, rot_x, y0, rot_y, pixel_h = (float(v) for v in gt)
        if rot_x != 0.0 or rot_y != 0.0:
            raise ValueError(
                f"rotated or sheared rasters are not supported (geotransform rotation terms {rot_x}, {rot_y}); "
                "warp the raster to a north-up grid first (gdalwarp)"
            )
        return cls(x0, y0, pixel_w, pixel_h, int(width), int(height), normalise_crs(crs))

    def to_geotransform(self) -> tuple[float, float, float, float, float, float]:
        return (self.origin_x, self.pixel_width, 0.0, self.origin_y, 0.0, self.pixel_height)

    def pixel_box(self, col0: float, row0: float, col1: float, row1: float) -> Bounds:
        """Map coordinates ``(xmin, ymin, xmax, ymax)`` of the pixel rectangle [col0, col1) x [row0, row1)."""
        xa = self.origin_x + col0 * self.pixel_width
        xb = self.origin_x + col1 * self.pixel_width
        ya = self.origin_y + row0 * self.pixel_height
        yb = self.origin_y + row1 * self.pixel_height
        return (min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Fractional (col, row) of a map coordinate."""
        return ((x - self.origin_x) / self.pixel_width, (y - self.origin_y) / self.pixel_height)

    @property
    def bounds(self) -> Bounds:
        return self.pixel_box(0, 0, self.width, self.height)


def north_up_plain(gt: tuple[float, ...]) -> bool:
    """A GDAL geotransform ``RasterGrid.from_geotransform`` accepts: no rotation terms, non-zero pixel size, finite."""
    return len(gt) == 6 and gt[2] == 0 and gt[4] == 0 and gt[1] != 0 and gt[5] != 0 and all(map(math.isfinite, gt))


@dataclass(frozen=True)
class GridOffset:
    """Where BEFORE's pixel (0, 0) lies in AFTER's pixels, for two rasters of one CRS and one pixel size."""

    dx: float
    dy: float

    @property
    def whole(self) -> tuple[int, int] | None:
        """(dx, dy) rounded when both are within 1e-3 px of a whole pixel (AFTER is read directly at that offset),
        else None (AFTER must be resampled onto BEFORE's grid)."""
        if abs(self.dx - round(self.dx)) <= 1e-3 and abs(self.dy - round(self.dy)) <= 1e-3:
            return int(round(self.dx)), int(round(self.dy))
        return None


def grid_offset(before_gt: tuple[float, ...], after_gt: tuple[float, ...]) -> GridOffset | None:
    """The one rule, for the plugin (GDAL) and describe (rasterio), of whether AFTER shares BEFORE's pixel size
    (GDAL geotransforms; the caller has checked that both have one CRS, each with its own library): their offset,
    or None when either is rotated or not finite or the pixel sizes differ (by more than 1e-9 relative)."""
    if not (north_up_plain(before_gt) and north_up_plain(after_gt)):
        return None
    b, a = before_gt, after_gt
    if not (math.isclose(a[1], b[1], rel_tol=1e-9) and math.isclose(a[5], b[5], rel_tol=1e-9)):
        return None
    return GridOffset((b[0] - a[0]) / b[1], (b[3] - a[3]) / b[5])


@dataclass(frozen=True)
class Chip:
    """One chip: before-raster pixel window ``(xoff, yoff, size, size)`` and its map bounds in the before CRS.

    ``owned`` is the part of the chip that is this tile's alone: neighbouring chips overlap (the last row and column
    are moved inward, and ``overlap`` > 0 overlaps every pair), and each overlap is split at its middle pixel, so
    the tiles' ``owned`` rectangles tile the raster without gaps or overlaps. The output polygon is ``owned`` (one
    tile under each point: one label, one tint, one Identify result); the model still sees the whole chip."""

    row: int
    col: int
    xoff: int
    yoff: int
    size: int
    tile_id: str
    bounds: Bounds
    owned: Bounds


DEFAULT_CHIP_SIZE = 384  # CCExpert's input (LEVIR-CC chips): what a client assumes when a backend names no chip size
GRID_VERSION = "owned-1based"  # part of the hash: outputs of earlier grids (edge chips overhanging; whole-chip polygons
# and 0-based rows) are not resumed into a layer of this one, so one layer never mixes two conventions


class RasterTooSmall(ValueError):
    """The raster is smaller than one chip. Padding it (as before) described mostly nothing: the chip was skipped as
    nodata and its polygon reached far past the imagery. The message names the chip size that fits."""

    def __init__(self, width: int, height: int, chip_size: int):
        self.width, self.height, self.chip_size = width, height, chip_size
        self.largest_chip = min(width, height)
        super().__init__(
            f"the before raster is {width} x {height} pixels, smaller than one chip of {chip_size} x {chip_size} "
            "pixels: "
            f"choose a chip size of at most {self.largest_chip} pixels (each chip is resized to the model's input; "
            "check the pixel-size warning) or a larger raster"
        )


class ChipGrid:
    """Chips of ``chip_size`` pixels every ``chip_size - overlap`` pixels over a :class:`RasterGrid`; the last chip
    of each row and column is shifted inward to end at the raster's edge (it overlaps its neighbour more), so the
    whole raster is covered by chips that lie inside it. A raster smaller than one chip is refused (RasterTooSmall)."""

    def __init__(self, raster: RasterGrid, chip_size: int, overlap: int = 0):
        if int(chip_size) != chip_size or chip_size <= 0:
            raise ValueError(f"chip size must be a positive whole number of pixels, got {chip_size!r}")
        if int(overlap) != overlap or overlap < 0 or overlap >= chip_size:
            raise ValueError(f"overlap must be a whole number in [0, chip size {chip_size}), got {overlap!r}")
        if raster.width < chip_size or raster.height < chip_size:
            raise RasterTooSmall(raster.width, raster.height, int(chip_size))
        self.raster = raster
        self.chip_size = int(chip_size)
        self.overlap = int(overlap)
        self.stride = self.chip_size - self.overlap
        # just enough chips to cover every pixel: the last one starts inside the raster and is not fully
        # inside the previous chip's overlap
        self.n_rows = max(1, _ceil_div(raster.height - self.overlap, self.stride))
        self.n_cols = max(1, _ceil_div(raster.width - self.overlap, self.stride))
        self.grid_hash = self._hash()

    def _hash(self) -> str:
        r = self.raster
        parts = (
            _canonical_float(r.origin_x),
            _canonical_float(r.origin_y),
            _canonical_float(r.pixel_width),
            _canonical_float(r.pixel_height),
            str(self.chip_size),
            str(self.stride),
            r.crs,
            GRID_VERSION,
        )
        return hashlib.sha1("|".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()[:8]

    def tile_id(self, row: int, col: int) -> str:
        return f"r{row:05d}_c{col:05d}_{self.grid_hash}"

    def offset(self, index: int, extent: int) -> int:
        """First pixel of chip `index` along an axis of `extent` pixels: every `stride`, the last one moved back to
        end at the edge (never before 0)."""
        return min(index * self.stride, max(0, extent - self.chip_size))

    def chip(self, row: int, col: int) -> Chip:
        """The chip at (row, col), inside the raster (the last row/column shifted inward to end at its edge)."""
        if not (0 <= row < self.n_rows and 0 <= col < self.n_cols):
            raise ValueError(f"chip (row {row}, col {col}) is outside the grid of {self.n_rows}x{self.n_cols} chips")
        xoff, yoff = self.offset(col, self.raster.width), self.offset(row, self.raster.height)
        bounds = self.raster.pixel_box(xoff, yoff, xoff + self.chip_size, yoff + self.chip_size)
        (x0, x1), (y0, y1) = (
            self.owned_span(col, self.n_cols, self.raster.width),
            self.owned_span(row, self.n_rows, self.raster.height),
        )
        owned = self.raster.pixel_box(x0, y0, x1, y1)
        return Chip(row, col, xoff, yoff, self.chip_size, self.tile_id(row, col), bounds, owned)

    def owned_span(self, index: int, n: int, extent: int) -> tuple[int, int]:
        """[first, end) pixels along an axis that chip `index` of `n` owns: from the middle of its overlap with the
        previous chip (or 0) to the middle of its overlap with the next one (or the raster's edge)."""

        def split(a: int) -> int:  # the middle pixel of the overlap of chips a and a + 1
            return (self.offset(a + 1, extent) + self.offset(a, extent) + self.chip_size) // 2

        return (0 if index == 0 else split(index - 1), extent if index == n - 1 else split(index))

    def index_range(self, bounds: Bounds | None = None) -> tuple[range, range]:
        """Rows and cols of the chips whose footprint overlaps ``bounds`` (positive area; default: the whole
        raster). ``bounds`` are in the before CRS and are clipped to the raster extent first."""
        r = self.raster
        rxmin, rymin, rxmax, rymax = r.bounds
        if bounds is None:
            bounds = r.bounds
        xmin, ymin, xmax, ymax = (float(v) for v in bounds)
        if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
            raise ValueError(f"bounds must be finite, got {bounds!r}")
        xmin, ymin, xmax, ymax = max(xmin, rxmin), max(ymin, rymin), min(xmax, rxmax), min(ymax, rymax)
        if xmin >= xmax or ymin >= ymax:
            return range(0), range(0)
        ca, ra = r.to_pixel(xmin, ymin)
        cb, rb = r.to_pixel(xmax, ymax)
        col_lo, col_hi = _clip_pixels(min(ca, cb), max(ca, cb), r.width)
        row_lo, row_hi = _clip_pixels(min(ra, rb), max(ra, rb), r.height)
        return (self._span(row_lo, row_hi, self.n_rows, r.height), self._span(col_lo, col_hi, self.n_cols, r.width))

    def _span(self, lo: float, hi: float, n: int, extent: int) -> range:
        # chip i < n-1 covers [i*stride, i*stride + chip); it overlaps (lo, hi) iff i*stride < hi and
        # i*stride + chip > lo. The last chip starts earlier (at the edge minus a chip) and reaches the edge, so it
        # overlaps (lo, hi) iff it starts before hi (lo < extent always holds here).
        first = max(0, math.floor((lo - self.chip_size) / self.stride) + 1)
        last = min(n - 2, math.ceil(hi / self.stride) - 1)
        if self.offset(n - 1, extent) < hi:
            last = n - 1
        first = min(first, n - 1)
        return range(first, last + 1) if last >= first else range(0)

    def count(self, bounds: Bounds | None = None, keep: Callable[[Chip], bool] | None = None) -> int:
        """Number of chips over ``bounds``: O(1) without ``keep`` (so huge AOIs can be refused before any
        work), else one streaming pass."""
        rows, cols = self.index_range(bounds)
        if keep is None:
            return len(rows) * len(cols)
        return sum(1 for _ in self.chips(bounds, keep))

    def chips(self, bounds: Bounds | None = None, keep: Callable[[Chip], bool] | None = None) -> Iterator[Chip]:
        """Chips overlapping ``bounds`` in row-major order, generated lazily (nothing is allocated per grid);
        ``keep(chip)`` filters, e.g. by intersection with the AOI polygon."""
        rows, cols = self.index_range(bounds)
        for row in rows:
            for col in cols:
                chip = self.chip(row, col)
                if keep is None or keep(chip):
                    yield chip


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _clip_pixels(lo: float, hi: float, n: int) -> tuple[float, float]:
    # snap values within 1e-6 px of a pixel edge onto it, so float noise from a CRS transform does not add a chip
    def snap(v: float) -> float:
        nearest = round(v)
        return float(nearest) if abs(v - nearest) < 1e-6 else v

    return max(0.0, snap(lo)), min(float(n), snap(hi))


def parse_tile_id(tile_id: str) -> tuple[int, int, str]:
    """``"r00001_c00002_ab12cd34"`` -> ``(1, 2, "ab12cd34")``; ValueError for anything else."""
    parts = tile_id.split("_")
    if len(parts) != 3 or not parts[0].startswith("r") or not parts[1].startswith("c") or len(parts[2]) != 8:
        raise ValueError(f"not a tile id: {tile_id!r}")
    try:
        int(parts[2], 16)
        return int(parts[0][1:]), int(parts[1][1:]), parts[2]
    except ValueError:
        raise ValueError(f"not a tile id: {tile_id!r}") from None
