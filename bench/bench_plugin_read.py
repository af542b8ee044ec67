"""Plugin chip path benchmark: chips/s read + encoded by the plugin vs raw GDAL, and peak memory for a
20000 x 20000 pair vs a 2000 x 2000 pair.

Run with QGIS' Python (the plugin's environment): ``/usr/bin/python3 bench/bench_plugin_read.py``.

1. Throughput, measured side by side in one run on the same windows of a GeoTIFF pair, alternating rounds,
   best round reported:
   - plugin: ``PairReader.read_chip`` (windowed read, padding, nodata masks, shared stretch) + ``encode_png``
     of both dates, i.e. everything the task does per chip before the HTTP request;
   - raw GDAL: ``Dataset.ReadAsArray`` of the same two windows + the same PNG encoding;
   - raw GDAL read only (no encoding), for reference.
   Goal: plugin >= 70 % of raw read + encode.
2. Peak memory (VmHWM of a fresh subprocess each) running the plugin path (grid count over the whole
   raster, stretch, then chips spread over the whole raster) on a 2000 x 2000 uint16 pair and on a
   20000 x 20000 pair. The large rasters are VRT mosaics of 100 copies of a 2000 x 2000 tile, so they cost
   nothing to build. Goal: about the same peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "qgis_plugin"))

from ccexpert_changes.core.grid import ChipGrid  # noqa: E402
from ccexpert_changes.reader import PairReader, encode_png, open_raster  # noqa: E402

CHIP = 384


def _texture(h: int, w: int, seed: int, dtype) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(20, 235, (3, h // 8 + 1, w // 8 + 1)).astype(np.float32)
    img = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :h, :w]
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    if dtype == np.uint16:
        img = img * 30 + 500
    return np.clip(img, 1, None).astype(dtype)


def _geotiff(path: Path, array: np.ndarray, origin=(500000.0, 4000000.0), pixel=0.5) -> Path:
    from osgeo import gdal_array

    bands, h, w = array.shape
    ds = gdal.GetDriverByName("GTiff").Create(
        str(path),
        w,
        h,
        bands,
        gdal_array.NumericTypeCodeToGDALTypeCode(array.dtype),
        options=["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256"],
    )
    ds.SetGeoTransform((origin[0], pixel, 0, origin[1], 0, -pixel))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    ds.WriteRaster(0, 0, w, h, np.ascontiguousarray(array).tobytes())
    ds = None
    return path


def _mosaic_vrt(path: Path, tile: Path, repeat: int) -> Path:
    """A ``repeat`` x ``repeat`` mosaic of ``tile`` as a VRT (no pixel is copied)."""
    src = gdal.Open(str(tile))
    gt, w, h = src.GetGeoTransform(), src.RasterXSize, src.RasterYSize
    dtype = gdal.GetDataTypeName(src.GetRasterBand(1).DataType)
    bands = []
    for b in range(1, src.RasterCount + 1):
        sources = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{tile}</SourceFilename><SourceBand>{b}</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
            f'<DstRect xOff="{c * w}" yOff="{r * h}" xSize="{w}" ySize="{h}"/></SimpleSource>'
            for r in range(repeat)
            for c in range(repeat)
        )
        bands.append(f'<VRTRasterBand dataType="{dtype}" band="{b}">{sources}</VRTRasterBand>')
    path.write_text(
        f'<VRTDataset rasterXSize="{w * repeat}" rasterYSize="{h * repeat}">'
        f"<SRS>{src.GetProjection().replace('<', '&lt;').replace('&', '&amp;')}</SRS>"
        f"<GeoTransform>{', '.join(repr(v) for v in gt)}</GeoTransform>{''.join(bands)}</VRTDataset>"
    )
    return path


def throughput(work: Path, size: int, rounds: int) -> dict:
    before = _geotiff(work / "tp_before.tif", _texture(size, size, 1, np.uint8))
    after = _geotiff(work / "tp_after.tif", _texture(size, size, 2, np.uint8))
    reader = PairReader(
        open_raster(str(before), "BEFORE"), open_raster(str(after), "AFTER"), [1, 2, 3], CHIP, log=lambda m: None
    )
    grid = ChipGrid(reader.grid, CHIP, 0)
    chips = list(grid.chips())
    reader.compute_stretch(reader.grid.bounds)
    raw_b, raw_a = gdal.Open(str(before)), gdal.Open(str(after))

    def plugin_path():
        for chip in chips:
            images = reader.read_chip(chip)
            encode_png(images.before)
            encode_png(images.after)

    def raw_path(encode: bool):
        for chip in chips:
            w = min(CHIP, size - chip.xoff)
            h = min(CHIP, size - chip.yoff)
            b = raw_b.ReadAsArray(chip.xoff, chip.yoff, w, h)
            a = raw_a.ReadAsArray(chip.xoff, chip.yoff, w, h)
            if encode:
                encode_png(b)
                encode_png(a)

    def plugin_read_only():
        for chip in chips:
            reader.read_chip(chip)

    cases = {
        "plugin_read_encode": plugin_path,
        "raw_read_encode": lambda: raw_path(True),
        "plugin_read_only": plugin_read_only,
        "raw_read_only": lambda: raw_path(False),
    }
    best = {name: float("inf") for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    rate = {name: len(chips) / t for name, t in best.items()}
    return {
        "chips": len(chips),
        "chips_per_s": {k: round(v, 1) for k, v in rate.items()},
        "ratio_read_encode": round(rate["plugin_read_encode"] / rate["raw_read_encode"], 3),
        "ratio_read_only": round(rate["plugin_read_only"] / rate["raw_read_only"], 3),
    }


def _vm_hwm_kib() -> int:
    """Peak RSS of this process image (VmHWM; unlike ru_maxrss it is not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(before: str, after: str, max_chips: int) -> dict:
    """Run in a fresh process: the plugin path over ``before``/``after``; report peak RSS."""
    rss0 = _vm_hwm_kib()
    reader = PairReader(open_raster(before, "BEFORE"), open_raster(after, "AFTER"), [1, 2, 3], CHIP, log=lambda m: None)
    grid = ChipGrid(reader.grid, CHIP, 0)
    total = grid.count(reader.grid.bounds)
    reader.compute_stretch(reader.grid.bounds)
    step = max(1, total // max_chips)
    done = 0
    start = time.perf_counter()
    for i, chip in enumerate(grid.chips(reader.grid.bounds)):
        if i % step:
            continue
        images = reader.read_chip(chip)
        encode_png(images.before)
        encode_png(images.after)
        done += 1
    return {
        "raster": f"{reader.grid.width}x{reader.grid.height}",
        "chips_in_grid": total,
        "chips_read": done,
        "seconds": round(time.perf_counter() - start, 2),
        "baseline_rss_mib": round(rss0 / 1024, 1),
        "peak_rss_mib": round(_vm_hwm_kib() / 1024, 1),
    }


def memory(work: Path, chips: int) -> dict:
    tile_b = _geotiff(work / "mem_tile_before.tif", _texture(2000, 2000, 3, np.uint16))
    tile_a = _geotiff(work / "mem_tile_after.tif", _texture(2000, 2000, 4, np.uint16))
    big_b = _mosaic_vrt(work / "big_before.vrt", tile_b, 10)
    big_a = _mosaic_vrt(work / "big_after.vrt", tile_a, 10)
    out = {}
    for name, (b, a) in {"2000": (tile_b, tile_a), "20000": (big_b, big_a)}.items():
        done = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(b), str(a), str(chips)],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, OMP_NUM_THREADS="1"),
        )
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    out["peak_ratio_20000_vs_2000"] = round(out["20000"]["peak_rss_mib"] / out["2000"]["peak_rss_mib"], 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=3072, help="throughput raster side in pixels (default 3072)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-chips", type=int, default=36, help="chips read per memory run (default 36)")
    parser.add_argument("--memory-child", nargs=3, metavar=("BEFORE", "AFTER", "CHIPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    gdal.SetCacheMax(64 * 1024 * 1024)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child[0], args.memory_child[1], int(args.memory_child[2]))))
        return 0
    with tempfile.TemporaryDirectory(prefix="ccexpert_bench_") as tmp:
        work = Path(tmp)
        mem = memory(work, args.memory_chips)  # first, before this process grows
        result = {"gdal": gdal.__version__, "throughput": throughput(work, args.size, args.rounds), "memory": mem}
    print(json.dumps(result, indent=1))
    tp, mem = result["throughput"], result["memory"]
    print(f"\nplugin read+encode vs raw GDAL read+encode: {tp['ratio_read_encode']:.0%} (goal >= 70%)")
    print(f"plugin read vs raw GDAL read (no encoding): {tp['ratio_read_only']:.0%}")
    print(
        f"peak RSS 20000x20000 vs 2000x2000: {mem['20000']['peak_rss_mib']} vs {mem['2000']['peak_rss_mib']} MiB "
        f"(x{mem['peak_ratio_20000_vs_2000']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
