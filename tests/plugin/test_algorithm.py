"""``processing.run("ccexpert:describe_changes")`` end to end: real QGIS, real ``ccexpert serve``."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKEND_BIN, SHARED_DATA, RecordingFeedback, read_layer
from osgeo import gdal
from plugin_rasters import ORIGIN, pair, textured, write_tif
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)

CHIP = 384
FIELDS = [
    "tile_id",
    "row",
    "col",
    "caption",
    "confidence",
    "changed",
    "status",
    "error",
    "nodata_before",
    "nodata_after",
    "model",
    "backend",
    "run_id",
    "created_utc",
    "objects",
    "actions",
    "n_objects",
    "where",
    "change_kind",
    "facts",
]


def expected_hash(origin_x, origin_y, px_w, px_h, chip, stride, crs) -> str:
    """Independent re-statement of the contract in docs/ARCHITECTURE.md (not the plugin's code)."""
    parts = [format(float(v), ".12g") for v in (origin_x, origin_y, px_w, px_h)] + [str(chip), str(stride), crs]
    parts.append("owned-1based")  # the grid version
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:8]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """900 x 1000 px at 0.5 m: 3 x 3 chips of 384; a bright square in chip (0, 0)."""
    return pair(tmp_path_factory.mktemp("scene"), h=900, w=1000, pixel=0.5, changes=((60, 60, 300, 300),))


def test_fields_and_geometries_are_exactly_on_the_grid(run_describe, scene, tmp_path, backend):
    before, after = scene
    out = tmp_path / "out.gpkg"
    results, feedback = run_describe(
        {"BEFORE": str(before), "AFTER": str(after), "MAX_NODATA": 0.9, "OVERLAP": 64, "OUTPUT": str(out)}
    )
    rows = read_layer(out)
    layer = QgsVectorLayer(f"{out}|layername=change_captions", "x", "ogr")
    assert [n for n in layer.fields().names() if n != "fid"] == FIELDS
    assert layer.crs().authid() == "EPSG:32615"
    stride = CHIP - 64
    n_rows, n_cols = -(-(900 - 64) // stride), -(-(1000 - 64) // stride)  # 3 x 3
    assert results["TILES"] == len(rows) == n_rows * n_cols == 9
    h = expected_hash(ORIGIN[0], ORIGIN[1], 0.5, -0.5, CHIP, stride, "EPSG:32615")
    by_id = {r["tile_id"]: r for r in rows}
    assert len(by_id) == len(rows)
    for row in range(n_rows):
        for col in range(n_cols):
            r = by_id[f"r{row:05d}_c{col:05d}_{h}"]

            # chips every stride, the last row/column moved inward to end at the raster's edge; each polygon is the
            # part of its chip the tile owns: neighbouring chips' overlap is split at its middle pixel (issue 25.7)
            def owned(i, n, extent):
                start = [min(k * stride, extent - CHIP) for k in range(n)]
                lo = 0 if i == 0 else (start[i] + start[i - 1] + CHIP) // 2
                hi = extent if i == n - 1 else (start[i + 1] + start[i] + CHIP) // 2
                return lo, hi

            (c0, c1), (r0, r1) = owned(col, n_cols, 1000), owned(row, n_rows, 900)
            expected = (ORIGIN[0] + c0 * 0.5, ORIGIN[1] - r1 * 0.5, ORIGIN[0] + c1 * 0.5, ORIGIN[1] - r0 * 0.5)
            assert r["bbox"] == pytest.approx(expected, abs=1e-6)
            assert r["vertices"] == 5 and (r["row"], r["col"]) == (row, col)
            assert r["nodata_before"] == 0 and r["nodata_after"] == 0  # the whole scene is read, nothing padded
            if r["nodata_before"] > 0.9:
                assert r["status"] == "skipped_nodata" and r["changed"] is None and r["caption"] is None
            else:
                assert r["status"] == "ok" and r["error"] is None
                assert isinstance(r["caption"], str) and r["caption"].strip()
                assert 0.0 <= r["confidence"] <= 1.0 and r["changed"] in (0, 1)
                assert r["model"] == backend.info["model_name"]
            assert r["backend"] == backend.url and r["run_id"] == results["RUN_ID"]
            assert r["created_utc"].endswith("Z")
    assert results["CAPTIONED"] + results["SKIPPED_NODATA"] == 9 and results["ERRORS"] == 0
    # the change-fact fields are the shared core's for each tile's caption (the same code as describe, issue 27)
    from ccexpert_changes.core.fact_fields import FACT_FIELD_NAMES, tile_fields

    for r in rows:
        changed = None if r["changed"] is None else bool(r["changed"])
        assert {n: r[n] for n in FACT_FIELD_NAMES} == tile_fields(r["caption"], changed), r["caption"]
    # change areas are on by default: the layer is there, its tiles are the changed tiles of the output (issue 27)
    areas = QgsVectorLayer(f"{out}|layername=change_areas", "areas", "ogr")
    assert areas.isValid()
    grouped = sorted(t for f in areas.getFeatures() for t in f["tile_ids"].split(","))
    assert grouped == sorted(r["tile_id"] for r in rows if r["changed"] == 1 and r["change_kind"])

    # the run's parameters travel with the layer, so `ccexpert report` can cut the same chips again
    ds = gdal.OpenEx(str(out))
    meta = json.loads(ds.GetLayerByName("change_captions").GetMetadataItem("ccexpert_describe"))
    ds = None
    assert meta["before"] == str(before) and meta["after"] == str(after) and meta["bands"] == "1,2,3"
    assert (meta["chip_size"], meta["overlap"], meta["grid_hash"]) == (CHIP, 64, h)
    report = subprocess.run(
        [str(BACKEND_BIN / "ccexpert"), "report", str(out), "-o", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    assert "imagery unavailable" not in report.stderr + report.stdout
    assert "<svg" in (tmp_path / "r.html").read_text()  # the overview map of the tiles


def test_aoi_in_another_crs_keeps_only_chips_it_touches(run_describe, scene, tmp_path):
    before, after = scene
    # a small polygon in WGS 84 inside chip (1, 1) only of the 3 x 3 grid (chips are 192 m wide; the last row and
    # column start at 258 m and 308 m, where they end at the raster's edge)
    utm, wgs = QgsCoordinateReferenceSystem("EPSG:32615"), QgsCoordinateReferenceSystem("EPSG:4326")
    to_wgs = QgsCoordinateTransform(utm, wgs, QgsProject.instance())
    x, y = ORIGIN[0] + 200, ORIGIN[1] - 200
    ring = [to_wgs.transform(QgsPointXY(px, py)) for px, py in ((x, y), (x + 50, y), (x + 50, y - 50), (x, y - 50))]
    far = [to_wgs.transform(QgsPointXY(ORIGIN[0] + 20, ORIGIN[1] - 20 - d)) for d in (0, 10)]
    aoi = QgsVectorLayer("Polygon?crs=EPSG:4326", "aoi", "memory")
    features = []
    for pts in (ring, [far[0], QgsPointXY(far[0].x() + 1e-4, far[0].y()), far[1]]):
        f = QgsFeature()
        f.setGeometry(QgsGeometry.fromPolygonXY([pts]))
        features.append(f)
    aoi.dataProvider().addFeatures(features)
    aoi.selectByIds([1])  # only the first polygon
    QgsProject.instance().addMapLayer(aoi)
    out = tmp_path / "aoi.gpkg"
    run_describe(
        {
            "BEFORE": str(before),
            "AFTER": str(after),
            "OUTPUT": str(out),
            "AOI": QgsProcessingFeatureSourceDefinition(aoi.id(), True),
        }
    )
    rows = read_layer(out)
    assert [(r["row"], r["col"]) for r in rows] == [(1, 1)]
    # without "selected features only" both polygons count: the far one touches chip (0, 0)
    out2 = tmp_path / "aoi_all.gpkg"
    run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out2), "AOI": aoi.id()})
    assert sorted((r["row"], r["col"]) for r in read_layer(out2)) == [(0, 0), (1, 1)]
    QgsProject.instance().removeMapLayer(aoi.id())


def test_crs_and_pixel_size_mismatch_are_resampled_and_logged(run_describe, tmp_path):
    data = textured(500, 500, 7)
    gt = (ORIGIN[0], 1.0, 0, ORIGIN[1], 0, -1.0)
    before = write_tif(tmp_path / "b.tif", data, gt)
    src = write_tif(tmp_path / "src.tif", data, gt)
    after_crs = tmp_path / "a_3857.tif"
    gdal.Warp(str(after_crs), str(src), dstSRS="EPSG:3857", xRes=1.7, yRes=1.7, resampleAlg="bilinear")
    aoi = _rect_layer(ORIGIN[0] + 10, ORIGIN[1] - 100, ORIGIN[0] + 100, ORIGIN[1] - 10, "EPSG:32615")  # chip (0, 0)
    out = tmp_path / "mismatch.gpkg"
    results, feedback = run_describe({"BEFORE": str(before), "AFTER": str(after_crs), "OUTPUT": str(out), "AOI": aoi})
    assert "resampled onto the BEFORE pixel grid" in feedback.log and "EPSG:3857" in feedback.log
    rows = read_layer(out)
    assert [(r["row"], r["col"], r["status"]) for r in rows] == [(0, 0, "ok")]
    assert rows[0]["nodata_after"] < 0.01  # the warped after covers the whole chip


def test_non_overlapping_rasters_are_refused(run_describe, tmp_path):
    data = textured(200, 200, 8)
    before = write_tif(tmp_path / "b.tif", data, (ORIGIN[0], 1.0, 0, ORIGIN[1], 0, -1.0))
    after = write_tif(tmp_path / "a.tif", data, (ORIGIN[0] + 5000, 1.0, 0, ORIGIN[1], 0, -1.0))
    out = tmp_path / "none.gpkg"
    with pytest.raises(QgsProcessingException, match="do not overlap"):
        run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out)})
    assert not out.exists()


def test_nodata_chips_are_not_sent(run_describe, tmp_path):
    data = textured(768, 768, 9)
    data[:, :384, 384:] = 0  # chip (0, 1) entirely nodata on both dates
    after = data.copy()
    after[:, 384:, :384] = 0  # chip (1, 0) nodata on the after date only
    gt = (ORIGIN[0], 1.0, 0, ORIGIN[1], 0, -1.0)
    b = write_tif(tmp_path / "b.tif", data, gt, nodata=0)
    a = write_tif(tmp_path / "a.tif", after, gt, nodata=0)
    out = tmp_path / "nodata.gpkg"
    results, _ = run_describe({"BEFORE": str(b), "AFTER": str(a), "OUTPUT": str(out), "MAX_NODATA": 0.5})
    rows = {(r["row"], r["col"]): r for r in read_layer(out)}
    assert rows[(0, 1)]["status"] == "skipped_nodata" and rows[(0, 1)]["nodata_before"] == 1.0
    assert rows[(1, 0)]["status"] == "skipped_nodata"
    assert (rows[(1, 0)]["nodata_before"], rows[(1, 0)]["nodata_after"]) == (0.0, 1.0)
    assert rows[(0, 0)]["status"] == rows[(1, 1)]["status"] == "ok"
    assert results["SKIPPED_NODATA"] == 2 and results["CAPTIONED"] == 2


def test_chip_size_and_bands_parameters(run_describe, tmp_path):
    """CHIP_SIZE 192 lays a 192 px grid (chips resized to the backend's size); BANDS picks and orders bands."""
    data = textured(384, 384, 11, bands=4)
    gt = (ORIGIN[0], 1.0, 0, ORIGIN[1], 0, -1.0)
    b = write_tif(tmp_path / "b4.tif", data, gt)
    a = write_tif(tmp_path / "a4.tif", data, gt)
    out = tmp_path / "small_chips.gpkg"
    results, _ = run_describe(
        {"BEFORE": str(b), "AFTER": str(a), "OUTPUT": str(out), "CHIP_SIZE": 192, "BANDS": [4, 2, 1]}
    )
    rows = read_layer(out)
    assert results["TILES"] == 4 and sorted((r["row"], r["col"]) for r in rows) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r["bbox"][2] - r["bbox"][0] == pytest.approx(192.0) and r["status"] == "ok" for r in rows)
    with pytest.raises(QgsProcessingException, match="band 7 does not exist"):
        run_describe({"BEFORE": str(b), "AFTER": str(a), "OUTPUT": str(tmp_path / "x.gpkg"), "BANDS": [1, 2, 7]})


def test_uint16_pair_gets_one_shared_stretch(run_describe, tmp_path):
    before, after = pair(tmp_path, h=384, w=384, changes=((50, 50, 150, 150),), dtype=np.uint16, name="u16")
    out = tmp_path / "u16.gpkg"
    results, feedback = run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out)})
    assert "8-bit stretch shared by both dates" in feedback.log
    assert results["CAPTIONED"] == 1 and read_layer(out)[0]["status"] == "ok"


def test_too_many_chips_fail_with_the_number(run_describe, scene, tmp_path):
    before, after = scene
    with pytest.raises(QgsProcessingException, match=r"needs 9 chips, more than the 4 of \"Ask before runs"):
        run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(tmp_path / "x.gpkg"), "MAX_CHIPS": 4})
    assert not (tmp_path / "x.gpkg").exists()


def test_cancel_then_resume_writes_every_tile_exactly_once(run_describe, tmp_path):
    before, after = pair(tmp_path, h=1152, w=1152, changes=((10, 10, 200, 200),))  # 3 x 3 full chips
    out = tmp_path / "resume.gpkg"
    params = {"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "BATCH_SIZE": 2}
    feedback = RecordingFeedback.make(cancel_at=30)
    with pytest.raises(QgsProcessingException, match="run again with Resume"):
        run_describe(params, feedback=feedback)
    first = read_layer(out)
    assert 0 < len(first) < 9, "the cancel should stop the run part-way and keep what was finished"
    assert all(r["status"] == "ok" for r in first)
    # resume with the same tiles: nothing finished is redone, nothing is duplicated
    results, fb = run_describe(params, RESUME=True)
    rows = read_layer(out)
    ids = [r["tile_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 9
    # issue 25: every count shown after a Resume is the layer's, not only this run's
    changed = sum(1 for r in rows if r["changed"])
    assert results["RESUMED"] == len(first) and results["CAPTIONED"] == 9 and results["CHANGED"] == changed > 0
    assert results["ERRORS"] == 0 and results["SKIPPED_NODATA"] == 0
    assert any(
        f"9 tiles captioned ({changed} changed)" in line and f"{9 - len(first)} captioned in this run" in line
        for line in fb.infos
    )
    from ccexpert_changes.core.layer_metadata import read_abstract

    assert f"9 tiles captioned, {changed} changed" in read_abstract(out, "change_captions")[1]
    first_run = {r["tile_id"]: r["run_id"] for r in first}
    for r in rows:
        assert r["run_id"] == first_run.get(r["tile_id"], results["RUN_ID"])
    # a second resume has nothing left to do
    again, _ = run_describe(params, RESUME=True)
    assert again["RESUMED"] == 9 and again["CAPTIONED"] == 9 and len(read_layer(out)) == 9
    # without RESUME the output is replaced
    fresh, _ = run_describe({**params, "MAX_CHIPS": 100})
    assert {r["run_id"] for r in read_layer(out)} == {fresh["RUN_ID"]}


def test_killed_run_keeps_finished_tiles_and_resumes(run_describe, backend, tmp_path):
    """SIGKILL in the middle of a run (a crash): the GeoPackage stays valid with the finished tiles."""
    import os
    import signal
    import time

    from osgeo import ogr

    before, after = pair(tmp_path, h=1152, w=1152, changes=((10, 10, 200, 200),))
    out = tmp_path / "crash.gpkg"
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"), QT_QPA_PLATFORM="offscreen")
    env.pop("QGIS_OPTIONS_PATH", None)
    proc = subprocess.Popen(
        [
            "/usr/bin/python3",
            str(Path(__file__).with_name("run_in_subprocess.py")),
            backend.url,
            backend.key,
            str(before),
            str(after),
            str(out),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    written = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists():
            ds = ogr.Open(str(out))
            layer = ds.GetLayerByName("change_captions") if ds is not None else None
            written = layer.GetFeatureCount() if layer is not None else 0
            ds = None
            if written >= 2:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()[-2000:]
    kept = read_layer(out)
    assert 2 <= len(kept) < 9 and all(r["status"] == "ok" for r in kept)
    results, _ = run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "RESUME": True})
    ids = [r["tile_id"] for r in read_layer(out)]
    assert len(ids) == len(set(ids)) == 9 and results["RESUMED"] == len(kept)


def test_resume_refuses_an_output_from_another_grid(run_describe, scene, tmp_path):
    before, after = scene
    out = tmp_path / "grid.gpkg"
    aoi = _rect_layer(ORIGIN[0] + 1, ORIGIN[1] - 50, ORIGIN[0] + 50, ORIGIN[1] - 1, "EPSG:32615")
    run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "AOI": aoi})
    with pytest.raises(QgsProcessingException, match="another chip grid"):
        run_describe(
            {"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "AOI": aoi, "OVERLAP": 32, "RESUME": True}
        )
    assert len(read_layer(out)) == 1


def test_rejected_chip_becomes_an_error_tile_and_the_rest_succeed(run_describe, scene, tmp_path, monkeypatch):
    from ccexpert_changes import chips as algorithm

    real = algorithm.encode_png
    calls = {"n": 0}

    def bad_second_pair(rgb, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] in (3, 4):  # both images of the second pair: 10 x 10 instead of the backend's chip size
            return real(rgb[:, :10, :10])
        return real(rgb, *args, **kwargs)

    monkeypatch.setattr(algorithm, "encode_png", bad_second_pair)
    before, after = scene
    aoi = _rect_layer(ORIGIN[0] + 1, ORIGIN[1] - 50, ORIGIN[0] + 300, ORIGIN[1] - 1, "EPSG:32615")  # 2 chips
    out = tmp_path / "rejected.gpkg"
    results, feedback = run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "AOI": aoi})
    rows = {r["col"]: r for r in read_layer(out)}
    assert rows[0]["status"] == "ok"
    assert rows[1]["status"] == "error" and "10x10" in rows[1]["error"] and rows[1]["changed"] is None
    assert results["ERRORS"] == 1 and any("r00000_c00001" in e for e in feedback.errors)


def test_backend_down_is_a_clear_error(provider, scene, tmp_path):
    import processing
    from conftest import free_port

    before, after = scene
    with pytest.raises(QgsProcessingException, match="Cannot reach the CCExpert backend at http://127.0.0.1"):
        processing.run(
            "ccexpert:describe_changes",
            {
                "BEFORE": str(before),
                "AFTER": str(after),
                "OUTPUT": str(tmp_path / "down.gpkg"),
                "BACKEND_URL": f"http://127.0.0.1:{free_port()}",
            },
            feedback=RecordingFeedback.make(),
        )
    assert not (tmp_path / "down.gpkg").exists()


def test_backend_failing_every_batch_raises_with_the_first_error(provider, scene, tmp_path):
    """No tile captioned: QgsProcessingException with the backend's reason (qgis_process then exits non-zero);
    the failed tiles are kept with their error, so RESUME can redo them."""
    import processing
    from stub_backend import FAILURE, failing_backend

    before, after = scene
    aoi = _rect_layer(ORIGIN[0] + 1, ORIGIN[1] - 50, ORIGIN[0] + 300, ORIGIN[1] - 1, "EPSG:32615")  # 2 chips
    out = tmp_path / "failing.gpkg"
    feedback = RecordingFeedback.make()
    with failing_backend() as (url, hits), pytest.raises(QgsProcessingException) as raised:
        processing.run(
            "ccexpert:describe_changes",
            {"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "AOI": aoi, "BACKEND_URL": url},
            feedback=feedback,
        )
    message = str(raised.value)
    assert "No tile was captioned: 2 tile(s) failed" in message and FAILURE in message and "Resume" in message
    assert hits() >= 2  # the batch, then each chip on its own
    rows = read_layer(out)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"error"} and all(FAILURE in r["error"] for r in rows)
    assert len([e for e in feedback.errors if FAILURE in e]) == 2


def test_wrong_key_stops_before_any_output(provider, backend, authcfg, scene, tmp_path):
    """A refused key (``/v1/auth/check``, or the first batch on a backend without it) stops the run before any
    output is written; the right key then runs normally."""
    import processing
    from ccexpert_changes import settings

    wrong = settings.store_api_key("not-the-key")
    before, after = scene
    out = tmp_path / "wrongkey.gpkg"
    with pytest.raises(QgsProcessingException, match="refused the API key"):
        processing.run(
            "ccexpert:describe_changes",
            {
                "BEFORE": str(before),
                "AFTER": str(after),
                "OUTPUT": str(out),
                "BACKEND_URL": backend.url,
                "AUTHCFG": wrong,
                "BATCH_SIZE": 4,
            },
            feedback=RecordingFeedback.make(),
        )
    assert not out.exists() and list(tmp_path.iterdir()) == []
    processing.run(
        "ccexpert:describe_changes",
        {
            "BEFORE": str(before),
            "AFTER": str(after),
            "OUTPUT": str(out),
            "BACKEND_URL": backend.url,
            "AUTHCFG": authcfg,
        },
        feedback=RecordingFeedback.make(),
    )
    rows = read_layer(out)
    assert len(rows) == len({r["tile_id"] for r in rows}) == 9
    assert "error" not in {r["status"] for r in rows}


class _AuthStub:
    """Thread server: ``/v1/info`` from the stub backend, ``/v1/auth/check`` answering 401, captions recorded."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from stub_backend import INFO

        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                outer.paths.append(self.path)
                if self.path == "/v1/info":
                    return self._send(200, INFO)
                return self._send(401, {"error": {"code": "unauthorized", "message": "wrong API key", "id": None}})

            def do_POST(self):
                outer.paths.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return self._send(500, {"error": {"code": "engine_error", "message": "never here", "id": None}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_key_is_checked_before_the_first_chip(provider, scene, tmp_path):
    import processing

    before, after = scene
    out = tmp_path / "auth.gpkg"
    with _AuthStub() as stub, pytest.raises(QgsProcessingException, match="refused the API key.*wrong API key"):
        processing.run(
            "ccexpert:describe_changes",
            {"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "BACKEND_URL": stub.url},
            feedback=RecordingFeedback.make(),
        )
    assert stub.paths == ["/v1/info", "/v1/auth/check"]  # no chip was sent
    assert not out.exists()


def test_output_that_is_an_input_is_refused_and_left_intact(run_describe, scene, tmp_path):
    before, after = scene
    aoi_path = tmp_path / "aoi.gpkg"
    aoi = _rect_layer(ORIGIN[0] + 1, ORIGIN[1] - 50, ORIGIN[0] + 50, ORIGIN[1] - 1, "EPSG:32615")
    from qgis.core import QgsVectorFileWriter

    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    QgsVectorFileWriter.writeAsVectorFormatV2(aoi, str(aoi_path), QgsProject.instance().transformContext(), options)
    aoi_bytes = aoi_path.read_bytes()
    with pytest.raises(QgsProcessingException, match="is the AOI"):
        run_describe({"BEFORE": str(before), "AFTER": str(after), "AOI": str(aoi_path), "OUTPUT": str(aoi_path)})
    assert aoi_path.read_bytes() == aoi_bytes
    link = tmp_path / "link.gpkg"  # a .gpkg name for the BEFORE raster: only the file identity tells
    link.symlink_to(before)
    image = Path(before).read_bytes()
    with pytest.raises(QgsProcessingException, match="is the BEFORE raster"):
        run_describe({"BEFORE": str(before), "AFTER": str(after), "AOI": aoi, "OUTPUT": str(link)})
    assert link.is_symlink() and Path(before).read_bytes() == image


def test_resume_refuses_the_output_of_another_scene_unless_forced(run_describe, scene, tmp_path):
    before, after = scene
    other_before, _ = pair(tmp_path, h=900, w=1000, pixel=0.5, seed=5, name="other")  # same grid, other pixels
    aoi = _rect_layer(ORIGIN[0] + 1, ORIGIN[1] - 50, ORIGIN[0] + 50, ORIGIN[1] - 1, "EPSG:32615")
    out = tmp_path / "fp.gpkg"
    first, _ = run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "AOI": aoi})
    params = {"BEFORE": str(other_before), "AFTER": str(after), "OUTPUT": str(out), "AOI": aoi, "RESUME": True}
    with pytest.raises(QgsProcessingException, match="made by another run: before raster") as raised:
        run_describe(params)
    assert str(other_before) in str(raised.value) and "Resume even if the output" in str(raised.value)
    assert [r["run_id"] for r in read_layer(out)] == [first["RUN_ID"]]
    forced, feedback = run_describe({**params, "RESUME_FORCE": True})
    assert forced["RESUMED"] == 1 and any("although it was made by another run" in e for e in feedback.errors)


def test_resume_without_a_fingerprint_or_of_a_damaged_file_is_refused(run_describe, scene, tmp_path):
    """Issue 24 finding 3: no run metadata was compared with nothing and accepted; a damaged file was appended to."""
    import sqlite3

    before, after = scene
    aoi = _rect_layer(ORIGIN[0] + 1, ORIGIN[1] - 50, ORIGIN[0] + 50, ORIGIN[1] - 1, "EPSG:32615")
    out = tmp_path / "nofp.gpkg"
    run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "AOI": aoi})
    with sqlite3.connect(out) as db:
        db.executescript("DELETE FROM gpkg_metadata_reference; DELETE FROM gpkg_metadata")
    swapped = {"BEFORE": str(after), "AFTER": str(before), "OUTPUT": str(out), "AOI": aoi, "RESUME": True}
    kept = out.read_bytes()
    with pytest.raises(QgsProcessingException, match="cannot be checked: it holds no run metadata"):
        run_describe(swapped)
    assert out.read_bytes() == kept
    forced, _ = run_describe({**swapped, "RESUME_FORCE": True})  # the way out stays
    assert forced["RESUMED"] == 1
    with sqlite3.connect(out) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'gpkg_metadata'").fetchone()
        (page,) = db.execute("PRAGMA page_size").fetchone()
    with open(out, "r+b") as f:
        f.seek((root - 1) * page)
        f.write(b"\xff" * 12)
    with pytest.raises(QgsProcessingException, match="is damaged"):
        run_describe({**swapped, "RESUME_FORCE": True})


def test_replacing_run_that_captions_nothing_keeps_the_old_output(run_describe, provider, scene, tmp_path):
    import processing
    from stub_backend import failing_backend

    before, after = scene
    aoi = _rect_layer(ORIGIN[0] + 1, ORIGIN[1] - 50, ORIGIN[0] + 300, ORIGIN[1] - 1, "EPSG:32615")  # 2 chips
    out = tmp_path / "keep.gpkg"
    first, _ = run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "AOI": aoi})
    old = read_layer(out)
    with failing_backend() as (url, _), pytest.raises(QgsProcessingException, match="left as it was"):
        processing.run(
            "ccexpert:describe_changes",
            {"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "AOI": aoi, "BACKEND_URL": url},
            feedback=RecordingFeedback.make(),
        )
    assert read_layer(out) == old and {r["run_id"] for r in old} == {first["RUN_ID"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.gpkg"]  # no temporary file left


def test_an_output_another_run_writes_is_refused_and_left_alone(run_describe, scene, tmp_path):
    """Issue 24: two runs on one output raced (the second's staged file replaced the first's output)."""
    from ccexpert_changes.core.output_lock import OutputLock, lock_path

    before, after = scene
    out = tmp_path / "busy.gpkg"
    with OutputLock(out), pytest.raises(QgsProcessingException, match="being written by another run"):
        run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out)})
    assert not out.exists() and not lock_path(out).exists()
    run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out)})  # free again: it runs
    assert len(read_layer(out)) == 9 and not lock_path(out).exists()


def test_result_loads_styled_in_a_named_group(run_describe, scene, tmp_path, qgis_new_project):
    import processing
    from ccexpert_changes.layer_style import GROUP_NAME

    before, after = scene
    aoi = _rect_layer(ORIGIN[0] + 1, ORIGIN[1] - 50, ORIGIN[0] + 50, ORIGIN[1] - 1, "EPSG:32615")
    params = {
        **run_describe.defaults,
        "BEFORE": str(before),
        "AFTER": str(after),
        "AOI": aoi,
        "OUTPUT": str(tmp_path / "styled.gpkg"),
    }
    results = processing.runAndLoadResults("ccexpert:describe_changes", params)
    group = QgsProject.instance().layerTreeRoot().findGroup(GROUP_NAME)
    assert group is not None and len(group.findLayers()) == 1
    layer = group.findLayers()[0].layer()
    assert layer.source().startswith(results["OUTPUT"]) and layer.featureCount() == 1
    assert layer.renderer().type() == "RuleRenderer"
    filters = [rule.filterExpression() for rule in layer.renderer().rootRule().children()]
    assert any("changed" in f and "= 1" in f for f in filters)
    assert layer.labelsEnabled() and "caption" in layer.mapTipTemplate()
    assert QgsProject.instance().layerTreeRoot().findLayer(layer.id()).parent() is group


def test_generated_scene_changes_are_found(run_describe, tmp_path, backend):
    """make_scene_pair puts changes in known chips; with the trained demo model the changed tiles are there."""
    before, after, truth = _synth_scene(tmp_path)
    out = tmp_path / "synth.gpkg"
    results, _ = run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out)})
    rows = read_layer(out)
    assert len(rows) == results["TILES"] == (truth["size"] // 384) ** 2
    assert all(r["status"] == "ok" for r in rows)
    # the generator's chips are the plugin's chips (same origin, 384 px, no overlap)
    x0, y0 = truth["bounds"][0], truth["bounds"][3]
    for r in rows:
        assert r["bbox"] == pytest.approx(
            (x0 + r["col"] * 192, y0 - (r["row"] + 1) * 192, x0 + (r["col"] + 1) * 192, y0 - r["row"] * 192)
        )
    if not backend.demo:
        pytest.skip(
            "grid and structure checked; caption correctness needs the trained demo model (backend/ccexpert/demo_model)"
        )
    changed_truth = {tuple(rc) for rc in truth["changed_chips"]}
    got = {(r["row"], r["col"]) for r in rows if r["changed"] == 1}
    captions = {(r["row"], r["col"]): r["caption"] for r in rows}
    # unchanged tiles get a no-change caption
    assert not (got - changed_truth), f"false changes {sorted(got - changed_truth)}: {captions}"
    # the shipped demo model must find every changed tile: a regression fails here, it is never skipped
    assert got == changed_truth, f"changed tiles {sorted(got)} vs generator {sorted(changed_truth)}: {captions}"


@pytest.mark.shared_data
def test_joplin_pair(run_describe, tmp_path):
    folder = SHARED_DATA / "xview2_joplin_geotiff"
    if not (folder / "A" / "chip_0.tif").exists():
        pytest.skip(f"{folder} is absent (optional shared data)")
    out = tmp_path / "joplin.gpkg"
    results, feedback = run_describe(
        {"BEFORE": str(folder / "A" / "chip_0.tif"), "AFTER": str(folder / "B" / "chip_0.tif"), "OUTPUT": str(out)}
    )
    rows = read_layer(out)
    # 1024 px at 0.6 m: 3 x 3 chips of 384; after is offset by a fraction of a pixel -> resampled
    assert results["TILES"] == 9 and len(rows) == 9
    assert "resampled" in feedback.log
    assert all(r["status"] in ("ok", "skipped_nodata") for r in rows)


# -- helpers -------------------------------------------------------------------------------------------------


def _rect_layer(xmin, ymin, xmax, ymax, crs) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"Polygon?crs={crs}", "aoi", "memory")
    f = QgsFeature()
    f.setGeometry(QgsGeometry.fromRect(QgsRectangle(xmin, ymin, xmax, ymax)))
    layer.dataProvider().addFeatures([f])
    return layer


def _synth_scene(tmp_path: Path):
    """``ccexpert_training.synth.make_scene_pair`` run by the backend venv (the QGIS venv has no rasterio)."""
    code = (
        "import sys; from ccexpert_training.synth import make_scene_pair; "
        "print(*make_scene_pair(sys.argv[1], size=1152, seed=3), sep='\\n')"
    )
    done = subprocess.run(
        [str(BACKEND_BIN / "python"), "-c", code, str(tmp_path / "synth")], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        pytest.skip(f"ccexpert_training.synth.make_scene_pair is not available: {done.stderr.strip()[-300:]}")
    before, after, changes = done.stdout.strip().splitlines()[-3:]
    return Path(before), Path(after), json.loads(Path(changes).read_text())


def test_slow_batches_shrink_the_batch_size(qgis_app):
    """A request taking over a third of the effective timeout halves the batch (QGIS caps timeouts at 60 s): the
    plugin's captioner tells the run loop what "slow" is."""
    from types import SimpleNamespace

    from ccexpert_changes.chips import BackendCaptioner

    client = SimpleNamespace(timeout_s=60.0, per_pair_timeout_s=30.0, effective_timeout_s=lambda t: min(t, 60.0))
    captioner = BackendCaptioner(client)
    assert captioner.slow_after_s(8) == 60.0 and captioner.slow_after_s(1) == 60.0
    client.effective_timeout_s = lambda t: t
    assert captioner.slow_after_s(2) == 120.0


def test_algorithm_output_opens_styled_without_the_plugin(run_describe, tmp_path):
    before, after = pair(tmp_path, h=400, w=400, changes=((50, 50, 200, 200),))
    out = tmp_path / "styled.gpkg"
    run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out)})
    layer = QgsVectorLayer(f"{out}|layername=change_captions", "as opened from the browser", "ogr")
    assert layer.isValid() and layer.renderer().type() == "RuleRenderer" and layer.labelsEnabled()
