"""GeoTIFF fixtures written with GDAL for the plugin tests (the QGIS venv has no torch, so nothing here
imports the backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal, osr

ORIGIN = (366000.0, 4110000.0)  # UTM 15N, near Joplin
EPSG = 32615


def write_tif(
    path: Path, array: np.ndarray, geotransform, epsg: int = EPSG, nodata: float | None = None, wkt: str | None = None
) -> Path:
    """``array`` is (bands, h, w); dtype decides the GDAL type."""
    from osgeo import gdal_array

    bands, h, w = array.shape
    gdal_type = gdal_array.NumericTypeCodeToGDALTypeCode(array.dtype)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, bands, gdal_type)
    ds.SetGeoTransform(tuple(geotransform))
    if wkt is None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        wkt = srs.ExportToWkt()
    ds.SetProjection(wkt)
    for i in range(bands):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(array[i])
        if nodata is not None:
            band.SetNoDataValue(nodata)
    ds.FlushCache()
    ds = None
    return path


def textured(h: int, w: int, seed: int = 0, dtype=np.uint8, bands: int = 3) -> np.ndarray:
    """Smooth random texture (so resampling keeps it recognisable), never exactly 0."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(20, 235, (bands, h // 16 + 2, w // 16 + 2)).astype(np.float64)
    yy = np.linspace(0, coarse.shape[1] - 1.001, h)
    xx = np.linspace(0, coarse.shape[2] - 1.001, w)
    y0, x0 = yy.astype(int), xx.astype(int)
    fy, fx = (yy - y0)[:, None], (xx - x0)[None, :]
    out = np.empty((bands, h, w))
    for b in range(bands):
        c = coarse[b]
        out[b] = (
            c[y0][:, x0] * (1 - fy) * (1 - fx)
            + c[y0 + 1][:, x0] * fy * (1 - fx)
            + c[y0][:, x0 + 1] * (1 - fy) * fx
            + c[y0 + 1][:, x0 + 1] * fy * fx
        )
    if np.issubdtype(dtype, np.integer) and np.iinfo(dtype).max > 255:
        out = out * 40 + 1000
    return np.clip(out, 1, None).astype(dtype)


def pair(
    tmp: Path,
    h: int = 900,
    w: int = 1000,
    pixel: float = 0.5,
    changes=((100, 100, 300, 300),),
    dtype=np.uint8,
    nodata: float | None = None,
    seed: int = 0,
    name: str = "scene",
) -> tuple[Path, Path]:
    """Before/after on the same grid; ``changes`` are (row0, col0, row1, col1) boxes painted bright on after."""
    before = textured(h, w, seed, dtype)
    after = before.copy()
    for r0, c0, r1, c1 in changes:
        after[:, r0:r1, c0:c1] = (
            np.array([250, 240, 30], dtype=np.float64).astype(dtype)[:, None, None]
            if dtype == np.uint8
            else np.iinfo(dtype).max // 2
        )
    gt = (ORIGIN[0], pixel, 0.0, ORIGIN[1], 0.0, -pixel)
    b = write_tif(tmp / f"{name}_before.tif", before, gt, nodata=nodata)
    a = write_tif(tmp / f"{name}_after.tif", after, gt, nodata=nodata)
    return b, a
