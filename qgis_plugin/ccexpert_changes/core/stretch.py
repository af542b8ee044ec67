"""One 8-bit stretch shared by both dates, and nodata masks (numpy only).

uint16/float imagery must become 8-bit RGB chips. Stretching each date (or each chip) on its own would turn
a radiometric difference between the dates into a visual change the model describes, so the low/high
percentiles are computed once per band from samples of *both* dates over the AOI, ignoring nodata, and the
same mapping is applied to every chip of both rasters. uint8 input passes through unchanged.

Arrays are band-first, ``(bands, height, width)``, as GDAL and rasterio read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_LOW_PERCENT = 2.0
DEFAULT_HIGH_PERCENT = 98.0


def valid_mask(array: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """bool ``(height, width)``: True where a pixel holds data. A pixel is nodata when *every* band equals
    ``nodata`` (GDAL's dataset mask rule, so a black pixel with one zero band stays valid) or any band is
    NaN/inf."""
    array = _as_chw(array)
    valid = np.ones(array.shape[1:], dtype=bool)
    if np.issubdtype(array.dtype, np.floating):
        valid &= np.isfinite(array).all(axis=0)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        valid &= ~(array == nodata).all(axis=0)
    return valid


def nodata_fraction(valid: np.ndarray) -> float:
    """Share of pixels that are nodata (padding included when ``valid`` covers the padded chip)."""
    if valid.size == 0:
        return 1.0
    return float(1.0 - np.count_nonzero(valid) / valid.size)


def padded_valid_mask(array: np.ndarray, nodata: float | None, size: int) -> np.ndarray:
    """Validity of a ``size`` x ``size`` chip whose in-raster part is ``array`` (top-left aligned); the
    padding beyond the raster edge is nodata."""
    inner = valid_mask(array, nodata)
    out = np.zeros((size, size), dtype=bool)
    out[: inner.shape[0], : inner.shape[1]] = inner
    return out


@dataclass(frozen=True)
class Stretch:
    """Per-band linear mapping ``lo -> 0, hi -> 255`` (clipped); ``passthrough`` for uint8 input."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    passthrough: bool = False

    @classmethod
    def identity(cls, bands: int = 3) -> Stretch:
        return cls(tuple(0.0 for _ in range(bands)), tuple(255.0 for _ in range(bands)), passthrough=True)

    def apply(self, array: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """uint8 ``(bands, height, width)``; pixels where ``valid`` is False become 0."""
        array = _as_chw(array)
        if array.shape[0] != len(self.lo):
            raise ValueError(f"stretch has {len(self.lo)} bands, array has {array.shape[0]}")
        if self.passthrough and array.dtype == np.uint8:
            out = array.copy()
        else:
            lo = np.asarray(self.lo, dtype=np.float64)[:, None, None]
            hi = np.asarray(self.hi, dtype=np.float64)[:, None, None]
            scaled = (array.astype(np.float64) - lo) * (255.0 / (hi - lo))
            scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
            out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        if valid is not None:
            out[:, ~valid] = 0
        return out

    def to_dict(self) -> dict:
        return {"lo": list(self.lo), "hi": list(self.hi), "passthrough": self.passthrough}


def compute_stretch(
    samples: Sequence[tuple[np.ndarray, float | None]],
    low_percent: float = DEFAULT_LOW_PERCENT,
    high_percent: float = DEFAULT_HIGH_PERCENT,
) -> Stretch:
    """One stretch for all ``samples``: ``[(array_before, nodata_before), (array_after, nodata_after)]``,
    each ``(bands, h, w)`` read over the AOI (decimated reads are fine; sizes may differ). Identity when
    every sample is uint8. Per band, ``low_percent``/``high_percent`` percentiles of the valid pixels of all
    samples together; a band with no valid pixel maps [0, 1]."""
    if not samples:
        raise ValueError("compute_stretch needs at least one sample")
    if not 0.0 <= low_percent < high_percent <= 100.0:
        raise ValueError(f"need 0 <= low < high <= 100 percent, got {low_percent}, {high_percent}")
    arrays = [(_as_chw(a), nodata) for a, nodata in samples]
    bands = {a.shape[0] for a, _ in arrays}
    if len(bands) != 1:
        raise ValueError(f"samples have different band counts: {sorted(bands)}")
    n_bands = bands.pop()
    if all(a.dtype == np.uint8 for a, _ in arrays):
        return Stretch.identity(n_bands)
    per_band: list[list[np.ndarray]] = [[] for _ in range(n_bands)]
    for a, nodata in arrays:
        valid = valid_mask(a, nodata)
        for b in range(n_bands):
            per_band[b].append(a[b][valid].astype(np.float64))
    lo: list[float] = []
    hi: list[float] = []
    for values in per_band:
        joined = np.concatenate(values) if values else np.empty(0)
        if joined.size == 0:
            lo.append(0.0)
            hi.append(1.0)
            continue
        p_lo, p_hi = np.percentile(joined, [low_percent, high_percent])
        if not p_hi > p_lo:  # flat band: keep a non-zero range
            p_hi = p_lo + 1.0
        lo.append(float(p_lo))
        hi.append(float(p_hi))
    return Stretch(tuple(lo), tuple(hi))


def _as_chw(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 2:
        return array[None]
    if array.ndim != 3:
        raise ValueError(f"expected a (bands, height, width) array, got shape {array.shape}")
    return array
