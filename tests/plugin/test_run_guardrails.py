"""Guardrails and feedback of a run (issues 17, 18): Before = After refused, the canvas-extent AOI, requests in
flight, per-batch progress, the demo flag in the results and in the layer's abstract."""

from __future__ import annotations

import os

import pytest
from conftest import RecordingFeedback, read_layer
from plugin_rasters import ORIGIN, pair
from qgis.core import QgsProcessingException, QgsVectorLayer


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """900 x 1000 px at 0.5 m: 3 x 3 chips of 384; a bright square in chip (0, 0)."""
    return pair(tmp_path_factory.mktemp("guard"), h=900, w=1000, pixel=0.5, changes=((60, 60, 300, 300),))


def test_before_equal_to_after_is_refused_before_any_chip(run_describe, scene, tmp_path):
    before, _ = scene
    out = tmp_path / "same.gpkg"
    with pytest.raises(QgsProcessingException, match="Before and After are the same raster"):
        run_describe({"BEFORE": str(before), "AFTER": str(before), "OUTPUT": str(out)})
    link = tmp_path / "link_to_before.tif"
    os.symlink(before, link)  # another name for the same file is still the same imagery
    with pytest.raises(QgsProcessingException, match="nothing can have changed"):
        run_describe({"BEFORE": str(before), "AFTER": str(link), "OUTPUT": str(out)})
    assert not out.exists()


def test_an_extent_such_as_the_map_canvas_limits_the_chips(run_describe, scene, tmp_path):
    before, after = scene
    x0, y1 = ORIGIN
    extent = f"{x0 + 10},{x0 + 100},{y1 - 100},{y1 - 10} [EPSG:32615]"  # inside chip (0, 0)
    results, _ = run_describe(
        {"BEFORE": str(before), "AFTER": str(after), "EXTENT": extent, "OUTPUT": str(tmp_path / "extent.gpkg")}
    )
    assert results["TILES"] == 1 and [(r["row"], r["col"]) for r in read_layer(tmp_path / "extent.gpkg")] == [(0, 0)]
    with pytest.raises(QgsProcessingException, match="does not overlap"):
        run_describe(
            {
                "BEFORE": str(before),
                "AFTER": str(after),
                "EXTENT": "0,10,0,10 [EPSG:32615]",
                "OUTPUT": str(tmp_path / "nowhere.gpkg"),
            }
        )


def test_requests_in_flight_give_the_same_layer_in_grid_order(run_describe, scene, tmp_path):
    """Three requests at once through QGIS networking (one per worker thread): the same captions as one at a
    time, every tile once, rows in grid order."""
    before, after = scene
    one, _ = run_describe(
        {
            "BEFORE": str(before),
            "AFTER": str(after),
            "BATCH_SIZE": 1,
            "IN_FLIGHT": 1,
            "OUTPUT": str(tmp_path / "one.gpkg"),
        }
    )
    feedback = RecordingFeedback.make()
    three, _ = run_describe(
        {
            "BEFORE": str(before),
            "AFTER": str(after),
            "BATCH_SIZE": 1,
            "IN_FLIGHT": 3,
            "OUTPUT": str(tmp_path / "three.gpkg"),
        },
        feedback=feedback,
    )
    assert any("3 requests of up to 1 chip pairs at the backend at once" in i for i in feedback.infos)
    rows_one, rows_three = read_layer(tmp_path / "one.gpkg"), read_layer(tmp_path / "three.gpkg")
    cells = [(r["row"], r["col"]) for r in rows_three]
    assert cells == sorted(cells) and len(set(cells)) == 9 == three["CAPTIONED"]
    assert [(r["caption"], r["changed"]) for r in rows_three] == [(r["caption"], r["changed"]) for r in rows_one]


def test_progress_says_chips_done_rate_and_time_left(run_describe, scene, tmp_path):
    texts = []
    feedback = RecordingFeedback.make()
    feedback.setProgressText = texts.append  # what the Processing dialog shows under its bar
    run_describe(
        {
            "BEFORE": str(before_after(scene)[0]),
            "AFTER": str(before_after(scene)[1]),
            "BATCH_SIZE": 2,
            "OUTPUT": str(tmp_path / "progress.gpkg"),
        },
        feedback=feedback,
    )
    assert texts[0].startswith("2/9 chips · ") and "pairs/s" in texts[0] and "left" in texts[0]
    assert texts[-1].startswith("9/9 chips")


def before_after(scene):
    return scene


def test_the_model_is_named_in_the_results_and_the_layer_abstract(run_describe, scene, tmp_path, backend):
    before, after = scene
    out = tmp_path / "abstract.gpkg"
    results, feedback = run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out)})
    assert results["DEMO"] == int(bool(backend.info.get("demo")))
    assert results["MODEL"].startswith(backend.info["model_name"])
    layer = QgsVectorLayer(f"{out}|layername=change_captions", "opened later", "ogr")
    abstract = layer.metadata().abstract()
    assert backend.info["model_name"] in abstract and "9 tiles captioned" in abstract
    if backend.info.get("demo"):
        assert "DEMO model" in abstract and "DEMO" in layer.metadata().title()


def test_the_chip_limit_counts_only_chips_that_will_be_sent(run_describe, scene, tmp_path):
    """A resume sends only the tiles not done yet: a limit below the grid's 9 chips but above what is left passes."""
    before, after = scene
    out = tmp_path / "limit.gpkg"
    x0, y1 = ORIGIN
    first, _ = run_describe(
        {
            "BEFORE": str(before),
            "AFTER": str(after),
            "OUTPUT": str(out),
            "EXTENT": f"{x0 + 10},{x0 + 300},{y1 - 100},{y1 - 10} [EPSG:32615]",
        }
    )  # chips (0,0), (0,1)
    assert first["CAPTIONED"] == 2
    params = {"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "MAX_CHIPS": 7}
    with pytest.raises(QgsProcessingException, match="needs 9 chips"):
        run_describe(params)  # a fresh run would send all 9
    assert len(read_layer(out)) == 2  # refused before anything was replaced
    resumed, _ = run_describe({**params, "RESUME": True})
    assert resumed["RESUMED"] == 2 and resumed["CAPTIONED"] == 9  # the layer's count (issue 25): 7 in this run


def test_a_cancel_with_requests_in_flight_leaves_no_request_thread_behind(run_describe, scene, tmp_path):
    """QGIS 3.22 can leave a request of another thread waiting forever when the run's feedback cancels it; the
    request threads are therefore not tied to that feedback: they end on their own and the process can exit."""
    import time

    before, after = scene
    feedback = RecordingFeedback.make(cancel_at=20)
    with pytest.raises(QgsProcessingException, match="Canceled"):
        run_describe(
            {
                "BEFORE": str(before),
                "AFTER": str(after),
                "BATCH_SIZE": 1,
                "IN_FLIGHT": 3,
                "OUTPUT": str(tmp_path / "canceled.gpkg"),
            },
            feedback=feedback,
        )
    from ccexpert_changes.qthreads import running_workers

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and running_workers():
        time.sleep(0.2)
    assert running_workers() == 0


def test_a_stalled_backend_times_out_in_a_request_thread(qgis_app):
    """A backend that accepts connections and never answers ends a request in flight (run in a QThread) with the
    timeout message, in seconds: it cannot hold the run."""
    import socket
    import time

    from ccexpert_changes.backend_client import BackendClient, BackendError
    from ccexpert_changes.qthreads import QThreadExecutor

    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(8)  # connections are accepted by the kernel and never answered
    client = BackendClient(f"http://127.0.0.1:{stalled.getsockname()[1]}", "", timeout_s=2.0, retries=0)
    client.per_pair_timeout_s = 0.0
    pool = QThreadExecutor(1)
    start = time.monotonic()
    try:
        future = pool.submit(client.captions, [{"id": "a", "before": "", "after": ""}])
        with pytest.raises(BackendError, match="did not answer"):
            future.result(timeout=90)
        assert time.monotonic() - start < 30
    finally:
        pool.shutdown()
        stalled.close()
