"""``ccexpert describe`` with several requests in flight (issue 18): the same output, in grid order, exactly once,
resumable; the default comes from ``/v1/info``; plus the pixel-size warning and the layer abstract (issue 17)."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from ccexpert.client import CCExpertClient
from ccexpert.describe import DescribeOptions, EngineCaptioner, ServiceCaptioner, describe
from ccexpert.service import Settings, create_app
from ccexpert_changes.core.fields import LAYER_NAME
from ccexpert_changes.core.layer_metadata import read_abstract
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, blocks, thread_server, write_tif


@pytest.fixture
def rasters(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    return (
        write_tif(tmp_path / "b.tif", blocks(1536), transform),
        write_tif(tmp_path / "a.tif", blocks(1536, seed=1), transform),
    )  # 4 x 4 chips of 384


def table(path) -> list[tuple]:
    """The layer's rows in the order they were written (fid), as an analyst's attribute table shows them."""
    with sqlite3.connect(path) as db:
        return db.execute(f'SELECT row, col, tile_id, caption, changed FROM "{LAYER_NAME}" ORDER BY fid').fetchall()


def test_requests_in_flight_write_the_same_layer_in_grid_order(rasters, tmp_path):
    before, after = rasters
    engine = EchoEngine(delay_per_pair=0.03)
    with thread_server(create_app(Settings(), engine)) as url:
        one = describe(
            DescribeOptions(
                str(before), str(after), str(tmp_path / "one.gpkg"), batch_size=1, in_flight=1, progress=False
            ),
            ServiceCaptioner(CCExpertClient(url)),
        )
    assert max(engine.batches) == 1  # one request at a time: the server never had two pairs at once
    engine = EchoEngine(delay_per_pair=0.03)  # a fresh server: the first one would answer these ids from its cache
    with thread_server(create_app(Settings(), engine)) as url:
        four = describe(
            DescribeOptions(
                str(before), str(after), str(tmp_path / "four.gpkg"), batch_size=1, in_flight=4, progress=False
            ),
            ServiceCaptioner(CCExpertClient(url)),
        )
    assert max(engine.batches) > 1  # several requests were at the server together: it batched them
    assert four.counts == one.counts == {"ok": 16, "error": 0, "skipped_nodata": 0}
    rows = table(tmp_path / "four.gpkg")
    assert [(r, c) for r, c, *_ in rows] == sorted((r, c) for r, c, *_ in rows)  # grid order
    assert len({tile for _, _, tile, *_ in rows}) == 16
    assert rows == table(tmp_path / "one.gpkg")  # the same tiles, captions and flags


def test_the_default_in_flight_is_what_the_backend_advertises(rasters, tmp_path, caplog):
    class Advertising(EchoEngine):
        def info(self):
            return {**super().info(), "max_in_flight": 3}

    before, after = rasters
    captioner_info = {"max_in_flight": 3}
    with thread_server(create_app(Settings(), Advertising())) as url:
        captioner = ServiceCaptioner(CCExpertClient(url))
        assert captioner.max_in_flight(captioner_info) == 3
        assert captioner.max_in_flight({"max_in_flight": 1000}) == 16 and captioner.max_in_flight({}) == 1
        assert captioner.max_in_flight({"max_in_flight": "many"}) == 1
    assert EngineCaptioner(EchoEngine()).max_in_flight({"max_in_flight": 8}) == 1  # one engine in this process
    with pytest.raises(ValueError, match="--in-flight must be from 1 to 16"):
        describe(
            DescribeOptions(str(before), str(after), str(tmp_path / "x.gpkg"), in_flight=0, progress=False),
            EngineCaptioner(EchoEngine()),
        )


def test_an_interrupted_run_with_requests_in_flight_resumes_exactly_once(rasters, tmp_path):
    before, after = rasters
    out = tmp_path / "o.gpkg"

    class Dies(ServiceCaptioner):
        calls = 0

        def caption(self, items):
            Dies.calls += 1
            if Dies.calls == 6:
                raise KeyboardInterrupt  # the user's Ctrl-C while other requests are at the backend
            return super().caption(items)

    with thread_server(create_app(Settings(), EchoEngine(delay_per_pair=0.02))) as url:
        with pytest.raises(KeyboardInterrupt):
            describe(
                DescribeOptions(str(before), str(after), str(out), batch_size=1, in_flight=3, progress=False),
                Dies(CCExpertClient(url)),
            )
        kept = table(out)
        assert 0 < len(kept) < 16 and [(r, c) for r, c, *_ in kept] == sorted((r, c) for r, c, *_ in kept)
        summary = describe(
            DescribeOptions(str(before), str(after), str(out), batch_size=1, in_flight=3, resume=True, progress=False),
            ServiceCaptioner(CCExpertClient(url)),
        )
    assert summary.skipped_done == len(kept) and summary.counts["ok"] == 16 - len(kept)
    assert len({tile for _, _, tile, *_ in table(out)}) == len(table(out)) == 16


def test_a_pixel_size_far_from_the_models_is_warned_about_and_the_abstract_names_the_model(tmp_path, caplog):
    class HalfMetre(EchoEngine):
        def info(self):
            return {**super().info(), "gsd_m": 0.5}

    coarse = from_origin(*ORIGIN, 10.0, 10.0)  # Sentinel-2-like 10 m pixels
    before = write_tif(tmp_path / "b.tif", blocks(768), coarse)
    after = write_tif(tmp_path / "a.tif", blocks(768, seed=1), coarse)
    out = tmp_path / "o.gpkg"
    with caplog.at_level(logging.WARNING, logger="ccexpert.describe"):
        describe(DescribeOptions(str(before), str(after), str(out), progress=False), EngineCaptioner(HalfMetre()))
    assert any(
        "trained on about 0.5 m per pixel" in r.getMessage() and "10 m per pixel" in r.getMessage()
        for r in caplog.records
    )
    title, abstract = read_abstract(out, LAYER_NAME)
    assert "DEMO" in title and abstract.startswith("Made with the DEMO model echo") and "4 tiles captioned" in abstract
