"""``ccexpert describe`` on GeoTIFF scenes: grid and fields, alignment, AOI, nodata, stretch, resume, restarts."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from ccexpert.cli import main
from ccexpert.describe import DescribeError, DescribeOptions, EngineCaptioner, ServiceCaptioner, describe
from ccexpert.gpkg_output import read_metadata, read_tiles
from ccexpert_changes.core.fields import FIELD_NAMES, LAYER_NAME
from ccexpert_changes.core.grid import ChipGrid, RasterGrid, parse_tile_id
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject
from service_helpers import (
    CRS_UTM,
    ORIGIN,
    REPO,
    EchoEngine,
    blocks,
    free_port,
    serve_process,
    stop_process,
    thread_server,
    wait_ready,
    write_tif,
)

JOPLIN = REPO.parent / "shared" / "data" / "xview2_joplin_geotiff"


def scene(tmp_path: Path, size: int = 1152, seed: int = 2) -> tuple[Path, Path]:
    """The data teammate's generated GeoTIFF scene (ccexpert_training.synth); our own blocks if it is missing."""
    try:
        from ccexpert_training.synth.scenes import make_scene_pair

        before, after, _ = make_scene_pair(tmp_path / "scene", size=size, seed=seed)
        return before, after
    except ImportError:
        transform = from_origin(*ORIGIN, 0.5, 0.5)
        return (
            write_tif(tmp_path / "before.tif", blocks(size), transform),
            write_tif(tmp_path / "after.tif", blocks(size) + 3, transform),
        )


def rows_of(path: Path) -> list[dict]:
    """The output's tiles in grid order; ``row``/``col`` here are the grid indexes (0-based, as in the tile id),
    checked against the layer's 1-based ``row``/``col`` fields (issue 25.8) on every tile."""
    tiles, _ = read_tiles(path)
    for t in tiles:
        row, col, _ = parse_tile_id(t["tile_id"])
        assert (t["row"], t["col"]) == (row + 1, col + 1), t
        t["row"], t["col"] = row, col
    return sorted(tiles, key=lambda t: (t["row"], t["col"]))


def expected_grid(before: Path, chip: int = 384, overlap: int = 0) -> ChipGrid:
    with rasterio.open(before) as src:
        return ChipGrid(
            RasterGrid.from_geotransform(src.transform.to_gdal(), src.width, src.height, src.crs.to_string()),
            chip,
            overlap,
        )


def echo_run(before, after, out, **kwargs):
    engine = EchoEngine()
    return describe(
        DescribeOptions(str(before), str(after), str(out), progress=False, **kwargs), EngineCaptioner(engine)
    ), engine


def test_tiny_model_on_generated_scene_fields_and_grid(tiny_model_dir, tmp_path, capsys):
    before, after = scene(tmp_path, size=1024)
    out = tmp_path / "out.gpkg"
    code = main(
        [
            "describe",
            str(before),
            str(after),
            "-o",
            str(out),
            "--model",
            str(tiny_model_dir),
            "--max-new-tokens",
            "8",
            "--batch-size",
            "4",
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "9 chips: 9 captioned" in capsys.readouterr().out
    rows = rows_of(out)
    grid = expected_grid(before)
    assert [(r["row"], r["col"]) for r in rows] == [(r, c) for r in range(3) for c in range(3)]
    for r in rows:
        chip = grid.chip(r["row"], r["col"])
        assert r["tile_id"] == chip.tile_id
        assert r["bounds"] == pytest.approx(chip.owned, abs=1e-6)  # the part the tile owns (issue 25.7)
        assert set(r) - {"bounds"} == set(FIELD_NAMES)
        assert r["model"] == "ccexpert-tiny-random" and r["backend"] == "in-process" and len(r["run_id"]) == 12
        assert r["created_utc"].endswith("Z")
    # 1024 px = 2 x 384 + 256: the last row and column of chips start at 1024 - 384 and end at the edge, so the
    # whole scene is captioned, nothing is padding, and no polygon reaches past the raster
    for r in rows:
        assert r["status"] == "ok" and r["caption"] and r["changed"] in (0, 1) and 0 <= r["confidence"] <= 1
        assert r["nodata_before"] == 0 and r["nodata_after"] == 0
    with rasterio.open(before) as src:
        left, bottom, right, top = src.bounds
        # chips at 0, 384 and 640 px: the last one owns from the middle of its overlap with the middle one (704 px)
        owned = 1024 - 704
        assert rows[-1]["bounds"] == pytest.approx(
            (right - owned * src.res[0], bottom, right, bottom + owned * src.res[1])
        )
        assert all(
            left <= r["bounds"][0] and r["bounds"][2] <= right + 1e-6 and bottom - 1e-6 <= r["bounds"][1] for r in rows
        )
    with rasterio.open(before) as src, fiona_open(out) as layer:
        assert CRS.from_wkt(layer.crs_wkt) == src.crs


def fiona_open(path):
    import fiona

    return fiona.open(path, layer=LAYER_NAME)


def test_after_on_another_crs_and_pixel_size_is_resampled_onto_before_chips(tmp_path, caplog):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    data = blocks(1152)
    before = write_tif(tmp_path / "before.tif", data, transform)
    # the same ground in Web Mercator at a coarser pixel: only resampling puts it back on the before chips
    dst_crs = CRS.from_string("EPSG:3857")
    bounds = rasterio.transform.array_bounds(1152, 1152, transform)
    dst_transform, width, height = calculate_default_transform(CRS_UTM, dst_crs, 1152, 1152, *bounds, resolution=0.7)
    warped = np.zeros((3, height, width), dtype=np.uint8)
    reproject(
        data,
        warped,
        src_transform=transform,
        src_crs=CRS_UTM,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        resampling=Resampling.nearest,
    )
    after = write_tif(tmp_path / "after.tif", warped, dst_transform, crs="EPSG:3857")
    with caplog.at_level(logging.WARNING, logger="ccexpert.raster_io"):
        summary, engine = echo_run(before, after, tmp_path / "out.gpkg", max_nodata=0.9)
    assert summary.resampled
    assert any("resampling it onto each before chip" in m and "CRS EPSG:3857" in m for m in caplog.messages)
    rows = rows_of(tmp_path / "out.gpkg")
    assert len(rows) == 9
    for r in rows:
        expected = (r["row"] * 3 + r["col"] + 1) * 10
        b, a = (int(w) for w in r["caption"].split()[1::2])
        assert b == expected
        # interior chips match to the grey level; border chips lose a sliver to the reprojected footprint
        assert abs(a - expected) <= (1 if (r["row"], r["col"]) == (1, 1) else expected * 0.1 + 1), r


def test_half_pixel_offset_like_joplin_is_resampled(tmp_path, caplog):
    data = blocks(768)
    before = write_tif(tmp_path / "b.tif", data, from_origin(*ORIGIN, 0.6, 0.674))
    after = write_tif(tmp_path / "a.tif", data, from_origin(ORIGIN[0] + 0.47, ORIGIN[1] - 0.27, 0.6, 0.674))
    with caplog.at_level(logging.WARNING, logger="ccexpert.raster_io"):
        summary, _ = echo_run(before, after, tmp_path / "o.gpkg")
    assert summary.resampled and any("fraction of a pixel" in m for m in caplog.messages)
    assert summary.counts["ok"] == 4
    # whole-pixel offset: read directly (no resampling), still the same ground under each chip
    shifted = write_tif(
        tmp_path / "s.tif", data[:, 10:, 5:], from_origin(ORIGIN[0] + 3.0, ORIGIN[1] - 6.74, 0.6, 0.674)
    )
    summary, _ = echo_run(before, shifted, tmp_path / "s.gpkg", max_nodata=0.9)
    assert not summary.resampled
    rows = {(r["row"], r["col"]): r["caption"] for r in rows_of(tmp_path / "s.gpkg")}
    assert rows[(1, 1)] == "before 40 after 40"  # fully covered by both: identical pixels
    # the after raster starts 10 px lower: chip (0, 1) has 10 rows without after data (20 * 374/384 = 19.5)
    assert rows[(0, 1)] == "before 20 after 19"


def test_aoi_in_another_crs_keeps_only_touching_chips(tmp_path):
    import fiona
    from pyproj import Transformer
    from shapely.geometry import box, mapping

    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "b.tif", blocks(1152), transform)
    after = write_tif(tmp_path / "a.tif", blocks(1152) + 1, transform)
    # a small box inside chip (1, 2) and straddling into (2, 2), given in WGS 84 degrees as GeoJSON
    x0, y0 = ORIGIN[0] + 2.2 * 192, ORIGIN[1] - 1.8 * 192
    utm_box = box(x0, y0 - 60, x0 + 40, y0)
    to_wgs = Transformer.from_crs(CRS_UTM, "EPSG:4326", always_xy=True)
    ring = [to_wgs.transform(x, y) for x, y in utm_box.exterior.coords]
    aoi_json = tmp_path / "aoi.geojson"
    aoi_json.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
                ],
            }
        )
    )
    echo_run(before, after, tmp_path / "o.gpkg", aoi=str(aoi_json))
    assert [(r["row"], r["col"]) for r in rows_of(tmp_path / "o.gpkg")] == [(1, 2), (2, 2)]
    # the same AOI as a GeoPackage in Web Mercator
    to_merc = Transformer.from_crs(CRS_UTM, "EPSG:3857", always_xy=True)
    merc = box(*to_merc.transform_bounds(*utm_box.bounds))
    aoi_gpkg = tmp_path / "aoi.gpkg"
    with fiona.open(
        aoi_gpkg, "w", driver="GPKG", crs="EPSG:3857", schema={"geometry": "Polygon", "properties": {"name": "str"}}
    ) as dst:
        dst.write({"geometry": mapping(merc), "properties": {"name": "aoi"}})
    echo_run(before, after, tmp_path / "o2.gpkg", aoi=str(aoi_gpkg))
    assert [(r["row"], r["col"]) for r in rows_of(tmp_path / "o2.gpkg")] == [(1, 2), (2, 2)]
    far = tmp_path / "far.geojson"
    far.write_text(
        json.dumps(
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]},
            }
        )
    )
    with pytest.raises(ValueError, match="does not overlap"):
        echo_run(before, after, tmp_path / "o3.gpkg", aoi=str(far))


def test_bad_inputs_are_refused_with_clear_messages(tmp_path, capsys):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "b.tif", blocks(400), transform)
    elsewhere = write_tif(tmp_path / "far.tif", blocks(400), from_origin(ORIGIN[0] + 10_000, ORIGIN[1], 0.5, 0.5))
    with pytest.raises(ValueError, match="do not overlap"):
        echo_run(before, elsewhere, tmp_path / "o.gpkg")
    assert not (tmp_path / "o.gpkg").exists()  # refused before anything was written
    rotated = write_tif(tmp_path / "rot.tif", blocks(400), Affine(0.5, 0.1, ORIGIN[0], 0.1, -0.5, ORIGIN[1]))
    with pytest.raises(ValueError, match="rotated"):
        echo_run(rotated, before, tmp_path / "o.gpkg")
    one_band = write_tif(tmp_path / "one.tif", blocks(400)[:1], transform)
    with pytest.raises(ValueError, match="1 band"):
        echo_run(one_band, before, tmp_path / "o.gpkg")
    echo_run(one_band, before, tmp_path / "one.gpkg", bands="1,1,1")
    with pytest.raises(ValueError, match="cannot open"):
        echo_run(tmp_path / "missing.tif", before, tmp_path / "o.gpkg")
    after = write_tif(tmp_path / "a.tif", blocks(400), transform)
    with pytest.raises(ValueError, match="over --max-chips 1"):
        echo_run(before, after, tmp_path / "o.gpkg", max_chips=1)
    # Before = After (the same file, or a link to it): refused before anything is opened or sent
    link = tmp_path / "link.tif"
    link.symlink_to(before)
    for same in (before, link):
        with pytest.raises(ValueError, match="before and after are the same raster"):
            echo_run(before, same, tmp_path / "o.gpkg")
    assert not (tmp_path / "o.gpkg").exists()
    # the command turns them into exit code 2 and one line on stderr
    assert main(["describe", str(before), str(elsewhere), "-o", str(tmp_path / "x.gpkg"), "-q"]) == 2
    assert "before and after rasters do not overlap" in capsys.readouterr().err


def test_nodata_chips_are_skipped_and_nodata_override(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    data = blocks(768)
    data[:, :384, :384] = 0  # chip (0, 0) empty in the before date
    data[:, 384:, 384:500] = 0  # chip (1, 1): 30% empty
    before = write_tif(tmp_path / "b.tif", data, transform, nodata=0)
    after = write_tif(tmp_path / "a.tif", blocks(768), transform)
    echo_run(before, after, tmp_path / "o.gpkg", max_nodata=0.5)
    rows = {(r["row"], r["col"]): r for r in rows_of(tmp_path / "o.gpkg")}
    assert rows[(0, 0)]["status"] == "skipped_nodata" and rows[(0, 0)]["nodata_before"] == 1.0
    assert rows[(0, 0)]["nodata_after"] == 0.0 and rows[(0, 0)]["changed"] is None
    assert rows[(1, 1)]["status"] == "ok" and rows[(1, 1)]["nodata_before"] == pytest.approx(116 / 384)
    # the same zeros in a raster declaring no nodata count as data, unless --nodata says otherwise
    undeclared = write_tif(tmp_path / "u.tif", data, transform)
    summary, _ = echo_run(undeclared, after, tmp_path / "u.gpkg")
    assert summary.counts["skipped_nodata"] == 0
    summary, _ = echo_run(undeclared, after, tmp_path / "n.gpkg", nodata=0)
    assert summary.counts["skipped_nodata"] == 1


def test_uint16_dates_share_one_stretch(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    base = blocks(768, dtype=np.uint16, scale=20) + 1000  # 1200, 1400, 1600, 1800
    before = write_tif(tmp_path / "b.tif", base, transform)
    after = write_tif(tmp_path / "a.tif", base + 150, transform)  # a brighter acquisition
    echo_run(before, after, tmp_path / "o.gpkg")
    stretch = read_metadata(tmp_path / "o.gpkg")["stretch"]
    assert not stretch["passthrough"] and stretch["lo"][0] == pytest.approx(1200) and stretch["hi"][0] > 1800
    for r in rows_of(tmp_path / "o.gpkg"):
        b, a = (int(w) for w in r["caption"].split()[1::2])
        assert a > b  # the radiometric shift is kept, not stretched away date by date


class Crashing(EngineCaptioner):
    def __init__(self, engine, after_batches: int):
        super().__init__(engine)
        self.left = after_batches

    def caption(self, items):
        if self.left == 0:
            raise KeyboardInterrupt  # like Ctrl-C or a killed process
        self.left -= 1
        return super().caption(items)


def test_interrupted_run_resumes_every_tile_exactly_once(tmp_path):
    before, after = scene(tmp_path, size=1152)
    out = tmp_path / "o.gpkg"
    options = DescribeOptions(str(before), str(after), str(out), batch_size=2, progress=False)
    with pytest.raises(KeyboardInterrupt):
        describe(options, Crashing(EchoEngine(), after_batches=2))
    assert len(rows_of(out)) == 4  # two finished batches survived
    with pytest.raises(ValueError, match="exists: use --resume"):
        describe(options, EngineCaptioner(EchoEngine()))
    options.resume = True
    engine = EchoEngine()
    summary = describe(options, EngineCaptioner(engine))
    assert summary.skipped_done == 4 and engine.pairs_seen == 5
    ids = [r["tile_id"] for r in rows_of(out)]
    assert len(ids) == 9 and len(set(ids)) == 9
    assert {r["status"] for r in rows_of(out)} == {"ok"}
    other_grid = DescribeOptions(str(before), str(after), str(out), chip_size=256, resume=True, progress=False)
    with pytest.raises(ValueError, match="different chip grid"):
        describe(other_grid, EngineCaptioner(EchoEngine()))


def test_error_tiles_are_redone_on_resume_and_not_duplicated(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "b.tif", blocks(768), transform)
    after = write_tif(tmp_path / "a.tif", blocks(768), transform)
    out = tmp_path / "o.gpkg"
    summary, _ = echo_run(before, after, out)
    engine = EchoEngine(fail_on=30)  # the engine cannot caption chip (0, 2)... here (1, 0) has value 30
    summary = describe(
        DescribeOptions(str(before), str(after), str(tmp_path / "e.gpkg"), progress=False), EngineCaptioner(engine)
    )
    rows = {(r["row"], r["col"]): r for r in rows_of(tmp_path / "e.gpkg")}
    assert summary.counts == {"ok": 3, "error": 1, "skipped_nodata": 0}
    assert rows[(1, 0)]["status"] == "error" and "before mean 30" in rows[(1, 0)]["error"]
    engine = EchoEngine()
    describe(
        DescribeOptions(str(before), str(after), str(tmp_path / "e.gpkg"), resume=True, progress=False),
        EngineCaptioner(engine),
    )
    assert engine.pairs_seen == 1
    rows = rows_of(tmp_path / "e.gpkg")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    with sqlite3.connect(tmp_path / "e.gpkg") as db:  # the unique index keeps duplicates out for good
        assert db.execute(f"SELECT COUNT(DISTINCT tile_id), COUNT(*) FROM {LAYER_NAME}").fetchone() == (4, 4)


def test_backend_down_keeps_finished_tiles_then_resume(tmp_path):
    """Through the HTTP client: the server goes away mid-run, describe stops with the reason on the
    unfinished batch, and --resume against a fresh server finishes every tile once."""
    from ccexpert.client import CCExpertClient
    from ccexpert.service import Settings, create_app

    before, after = scene(tmp_path, size=1152)
    out = tmp_path / "o.gpkg"
    # one request at a time: the server goes away between two known requests (in flight: test_describe_in_flight)
    options = DescribeOptions(str(before), str(after), str(out), batch_size=2, in_flight=1, progress=False)
    engine = EchoEngine()
    with thread_server(create_app(Settings(), engine)) as first_url:
        captioner = ServiceCaptioner(CCExpertClient(first_url, retries=1, backoff=0.01, connect_timeout=1))
        calls = {"n": 0}
        real = captioner.client.caption

        def stop_after_two(items, max_new_tokens=None):
            calls["n"] += 1
            if calls["n"] == 3:
                captioner.client.base_url = f"http://127.0.0.1:{free_port()}"  # the server is gone
            return real(items, max_new_tokens=max_new_tokens)

        captioner.client.caption = stop_after_two
        with pytest.raises(DescribeError, match="failed after 2 attempts"):  # it answered before: a restart?
            describe(options, captioner)
    rows = rows_of(out)
    assert [r["status"] for r in rows].count("ok") == 4 and [r["status"] for r in rows].count("error") == 2
    assert "ConnectionError" in next(r["error"] for r in rows if r["status"] == "error")
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        options.resume = True
        summary = describe(options, ServiceCaptioner(CCExpertClient(url)))
    assert summary.skipped_done == 4 and summary.counts["ok"] == 5
    rows = rows_of(out)
    assert len(rows) == 9 and len({r["tile_id"] for r in rows}) == 9 and {r["status"] for r in rows} == {"ok"}
    assert sorted(r["backend"] for r in rows) == sorted([first_url] * 4 + [url] * 5)


def test_server_restarted_during_describe_run(tiny_model_dir, tmp_path):
    """Real processes: `ccexpert serve` (tiny model) is stopped and started again while `ccexpert describe
    --backend` runs; the client's retries carry the run over the gap and every tile is written exactly once."""
    before, after = scene(tmp_path, size=1152)
    out = tmp_path / "o.gpkg"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve_args = ("--model", str(tiny_model_dir), "--max-new-tokens", "6")
    server = serve_process(port, *serve_args, log_path=tmp_path / "serve1.log")
    describe_proc = None
    try:
        wait_ready(url, 120, server)
        describe_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ccexpert.cli",
                "describe",
                str(before),
                str(after),
                "-o",
                str(out),
                "--backend",
                url,
                "--batch-size",
                "1",
                "--retries",
                "8",
                "--max-new-tokens",
                "6",
                "-q",
            ],
            cwd=REPO,
            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while _count(out) < 2 and time.monotonic() < deadline and describe_proc.poll() is None:
            time.sleep(0.1)
        assert 2 <= _count(out) < 9, "describe finished before the server could be stopped"
        stop_process(server)
        time.sleep(1.0)
        server = serve_process(port, *serve_args, log_path=tmp_path / "serve2.log")
        stdout, stderr = describe_proc.communicate(timeout=180)
        assert describe_proc.returncode == 0, stderr
        assert "9 chips: 9 captioned" in stdout
        served_after_restart = requests.get(url + "/metrics", timeout=10).text
        assert re.search(r'ccexpert_pairs_total\{status="ok"\} [1-9]', served_after_restart)
    finally:
        stop_process(server)
        if describe_proc is not None and describe_proc.poll() is None:
            describe_proc.kill()
    rows = rows_of(out)
    assert len(rows) == 9 and len({r["tile_id"] for r in rows}) == 9
    assert {r["status"] for r in rows} == {"ok"} and {r["model"] for r in rows} == {"ccexpert-tiny-random"}


def _count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute(f"SELECT COUNT(*) FROM {LAYER_NAME}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.shared_data
@pytest.mark.skipif(not JOPLIN.exists(), reason=f"shared data absent: {JOPLIN}")
def test_joplin_pair_with_tiny_model(tiny_model_dir, tmp_path, caplog):
    from ccexpert.engine import CaptionEngine

    engine = CaptionEngine.from_pretrained(tiny_model_dir, device="cpu")
    with caplog.at_level(logging.WARNING, logger="ccexpert.raster_io"):
        summary = describe(
            DescribeOptions(
                str(JOPLIN / "A" / "chip_0.tif"),
                str(JOPLIN / "B" / "chip_0.tif"),
                str(tmp_path / "j0.gpkg"),
                max_new_tokens=6,
                progress=False,
            ),
            EngineCaptioner(engine),
        )
    assert summary.resampled and any("fraction of a pixel" in m for m in caplog.messages)
    # 1024 px: 3 x 3 chips, the last row and column end at the raster's edge, so none is padding
    assert summary.total == 9 and summary.counts["ok"] == 9 and summary.counts["skipped_nodata"] == 0
    rows = rows_of(tmp_path / "j0.gpkg")
    assert rows[0]["bounds"][0] == pytest.approx(366676.2000007954) and rows[0]["bounds"][3] == pytest.approx(
        4104257.1165709454
    )
    # chip_1 is ~59% nodata (zeros, not declared): --nodata 0 finds it and skips those chips
    summary = describe(
        DescribeOptions(
            str(JOPLIN / "A" / "chip_1.tif"),
            str(JOPLIN / "B" / "chip_1.tif"),
            str(tmp_path / "j1.gpkg"),
            nodata=0,
            max_new_tokens=6,
            progress=False,
        ),
        EngineCaptioner(engine),
    )
    rows = rows_of(tmp_path / "j1.gpkg")
    assert summary.counts["skipped_nodata"] >= 4 and summary.counts["ok"] >= 1
    mean_nodata = np.mean([r["nodata_before"] for r in rows])
    assert 0.45 < mean_nodata < 0.8


def test_huge_raster_is_streamed_memory_stays_flat(tmp_path):
    """A 20000 x 20000 px pair (sparse GeoTIFFs: nothing written, so they cost no disk) with a small AOI:
    the chip count is known without iterating, and describing a few chips allocates a few chip-sized arrays,
    never the raster."""
    import tracemalloc

    profile = {
        "driver": "GTiff",
        "width": 20000,
        "height": 20000,
        "count": 3,
        "dtype": "uint16",
        "crs": CRS_UTM,
        "transform": from_origin(*ORIGIN, 0.5, 0.5),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "SPARSE_OK": "TRUE",
        "compress": "deflate",
    }
    for name in ("b.tif", "a.tif"):
        with rasterio.open(tmp_path / name, "w", **profile):
            pass
    grid = expected_grid(tmp_path / "b.tif")
    assert grid.count() == 53 * 53
    aoi = tmp_path / "aoi.geojson"
    x0, y0 = ORIGIN[0] + 5000, ORIGIN[1] - 5000
    aoi.write_text(
        json.dumps(
            {
                "type": "Feature",
                "properties": {},
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[x0, y0], [x0 + 300, y0], [x0 + 300, y0 - 200], [x0, y0 - 200], [x0, y0]]],
                },
            }
        )
    )
    tracemalloc.start()
    try:
        summary, engine = echo_run(tmp_path / "b.tif", tmp_path / "a.tif", tmp_path / "o.gpkg", aoi=str(aoi))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.total == 4 and engine.pairs_seen == 4  # 300 m x 200 m from 5000 m: chips 26-27 x 26-27
    assert peak < 64 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"  # the raster would be 2.4 GB


def test_wrong_key_stops_with_the_reason_on_the_tiles(tmp_path, capsys):
    """A wrong key stops the run before its first chip (``GET /v1/auth/check``, or the first batch on a server
    without it): exit 2, the reason on stderr, no output file; the right key then runs normally."""
    from ccexpert.service import Settings, create_app
    from ccexpert.service.auth import key_line

    keys = tmp_path / "keys.txt"
    keys.write_text(key_line("right-key") + "\n")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("wrong-key\n")
    wrong.chmod(0o600)
    before = write_tif(tmp_path / "b.tif", blocks(768), from_origin(*ORIGIN, 0.5, 0.5))
    after = write_tif(tmp_path / "a.tif", blocks(768), from_origin(*ORIGIN, 0.5, 0.5))
    out = tmp_path / "o.gpkg"
    with thread_server(create_app(Settings(api_keys_file=keys), EchoEngine())) as url:
        args = ["describe", str(before), str(after), "-o", str(out), "--backend", url, "-q", "--batch-size", "2"]
        assert main([*args, "--api-key-file", str(wrong)]) == 2  # refused key: nothing written
        err = capsys.readouterr().err
        assert "refused the API key" in err and "401" in err and "--resume" not in err
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
            "a.tif",
            "b.tif",
            "keys.txt",
            "wrong.txt",
        ]
        right = tmp_path / "right.txt"
        right.write_text("right-key\n")
        right.chmod(0o600)
        assert main([*args, "--api-key-file", str(right)]) == 0
    rows = rows_of(out)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}


def test_skipped_chips_share_transactions(tmp_path, monkeypatch):
    """A mostly empty raster: the nodata rows ride in the next batch's transaction instead of one transaction
    each (issue 16: ~117 rows/s that way, 10 min of writing for a 68k-chip raster)."""
    from ccexpert import gpkg_output

    data = np.zeros((3, 1024, 1024), dtype=np.uint8)
    data[:, 400:496, 400:496] = blocks(96, chip=32)  # 12 chips of 32 px at least half full, 1012 (nearly) empty
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "b.tif", data, transform, nodata=0)
    after = write_tif(tmp_path / "a.tif", data, transform, nodata=0)
    writes: list[int] = []
    real = gpkg_output.TileWriter.write

    def counting(self, tiles):
        tiles = list(tiles)
        writes.append(len(tiles))
        return real(self, tiles)

    monkeypatch.setattr(gpkg_output.TileWriter, "write", counting)
    summary, engine = echo_run(before, after, tmp_path / "o.gpkg", chip_size=32, batch_size=4)
    assert summary.counts == {"ok": 12, "error": 0, "skipped_nodata": 1012} and engine.pairs_seen == 12
    rows = rows_of(tmp_path / "o.gpkg")
    assert len(rows) == 1024 and len({r["tile_id"] for r in rows}) == 1024
    transactions = len([n for n in writes if n])
    assert sum(writes) / transactions >= 50, f"{transactions} transactions for {sum(writes)} rows"


def test_grid_chip_size_other_than_the_models_is_resized(tmp_path):
    before = write_tif(tmp_path / "b.tif", blocks(768, chip=192), from_origin(*ORIGIN, 0.5, 0.5))
    after = write_tif(tmp_path / "a.tif", blocks(768, chip=192), from_origin(*ORIGIN, 0.5, 0.5))
    summary, engine = echo_run(before, after, tmp_path / "o.gpkg", chip_size=192)
    assert summary.total == 16 and engine.pairs_seen == 16
    rows = rows_of(tmp_path / "o.gpkg")
    assert rows[5]["caption"] == "before 60 after 60"  # chip (1, 1) = block 6, resized from 192 to 384 px
    assert rows[5]["bounds"][2] - rows[5]["bounds"][0] == pytest.approx(96.0)
