"""``ccexpert describe`` through the one run driver (issue 26): a ``--batch-size`` above the server's ``max_batch``
and requests over its byte budget are split to fit, not refused; the output contract (lock, re-count, resume
without a fingerprint) holds."""

from __future__ import annotations

import sqlite3

import pytest
from ccexpert.cli import main
from ccexpert.service import Settings, create_app
from ccexpert_changes.core.fields import LAYER_NAME
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, blocks, thread_server, write_tif


@pytest.fixture
def rasters(tmp_path):
    """3 x 3 chips of 384 px, every chip different."""
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    return (
        write_tif(tmp_path / "before.tif", blocks(1152), transform),
        write_tif(tmp_path / "after.tif", blocks(1152) + 3, transform),
    )


def _run(before, after, out, *extra) -> int:
    return main(["describe", str(before), str(after), "-o", str(out), "-q", *extra])


def _statuses(out) -> list[str]:
    with sqlite3.connect(out) as db:
        return [s for (s,) in db.execute(f'SELECT status FROM "{LAYER_NAME}" ORDER BY fid')]


def test_batch_size_above_the_servers_max_batch_completes(rasters, tmp_path, capsys):
    before, after = rasters
    with thread_server(create_app(Settings(max_batch=2), EchoEngine())) as url:
        code = _run(before, after, tmp_path / "o.gpkg", "--backend", url, "--batch-size", "8")
    assert code == 0, capsys.readouterr().err
    assert _statuses(tmp_path / "o.gpkg") == ["ok"] * 9


def test_requests_stay_under_the_servers_byte_budget(rasters, tmp_path, capsys):
    """One chip pair of these rasters is ~10-20 kB as base64 PNG; a 48 kB body limit holds two or three of them, so
    a batch of 8 must be split by bytes (before the fix: 413, the run stops)."""
    before, after = rasters
    with thread_server(create_app(Settings(max_body_bytes=48 * 1024), EchoEngine())) as url:
        code = _run(before, after, tmp_path / "o.gpkg", "--backend", url, "--batch-size", "8")
    assert code == 0, capsys.readouterr().err
    assert _statuses(tmp_path / "o.gpkg") == ["ok"] * 9
