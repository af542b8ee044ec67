"""``ccexpert describe`` exit codes and its last lines when the backend fails: 4 none captioned, 3 some failed,
0 all done; counts right, the first error shown, finished tiles kept for --resume."""

from __future__ import annotations

import pytest
from ccexpert.cli import main
from ccexpert.gpkg_output import read_tiles
from ccexpert.service import Settings, create_app
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, blocks, free_port, thread_server, write_tif


class FailsAfter(EchoEngine):
    """Captions its first `ok_calls` batches (the service's start-up sample is the first), then fails every one."""

    def __init__(self, ok_calls: int):
        super().__init__()
        self.ok_calls = ok_calls
        self.calls = 0

    def caption(self, pairs, max_new_tokens: int = 64):
        self.calls += 1
        if self.calls > self.ok_calls:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super().caption(pairs, max_new_tokens)


@pytest.fixture
def rasters(tmp_path):
    """3 x 3 chips of 384 px, every chip different."""
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    return (write_tif(tmp_path / "before.tif", blocks(1152), transform),
            write_tif(tmp_path / "after.tif", blocks(1152) + 3, transform))


def _describe(rasters, out, url, *extra) -> int:
    before, after = rasters
    return main(["describe", str(before), str(after), "-o", str(out), "--backend", url, "-q", "--batch-size", "2",
                 "--retries", "0", *extra])


def _statuses(out) -> dict[str, dict]:
    tiles, _ = read_tiles(out)
    return {t["tile_id"]: t for t in tiles}


def test_closed_port_exits_4_and_writes_nothing(rasters, tmp_path, capsys):
    out = tmp_path / "o.gpkg"
    assert _describe(rasters, out, f"http://127.0.0.1:{free_port()}") == 4
    err = capsys.readouterr().err
    assert "unreachable" in err and "nothing captioned" in err and "ConnectionError" in err
    assert not out.exists()


def test_server_failing_every_batch_exits_4_with_counts_and_first_error(rasters, tmp_path, capsys):
    out = tmp_path / "o.gpkg"
    with thread_server(create_app(Settings(), FailsAfter(ok_calls=1))) as url:
        assert _describe(rasters, out, url) == 4
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    counts = next(line for line in lines if line.startswith("9 chips:"))
    assert "0 captioned" in counts and "2 errors" in counts and "7 not reached" in counts
    assert any(line.startswith("first error:") and "illegal memory access" in line for line in lines)
    assert "--resume" in captured.err and captured.out == ""
    tiles = _statuses(out)
    assert len(tiles) == 2 and {t["status"] for t in tiles.values()} == {"error"}


def test_some_tiles_failed_exits_3_then_resume_keeps_them_and_exits_0(rasters, tmp_path, capsys):
    out = tmp_path / "o.gpkg"
    with thread_server(create_app(Settings(), FailsAfter(ok_calls=3))) as url:  # sample + 2 batches, then fails
        assert _describe(rasters, out, url) == 3
    err = capsys.readouterr().err
    assert "4 captioned" in err and "2 errors" in err and "3 not reached" in err and "illegal memory" in err
    first = _statuses(out)
    done = {tid: t for tid, t in first.items() if t["status"] == "ok"}
    assert len(done) == 4
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        assert _describe(rasters, out, url, "--resume") == 0
    captured = capsys.readouterr()
    assert "5 captioned" in captured.out and "4 already done" in captured.out and "first error" not in captured.err
    final = _statuses(out)
    assert len(final) == 9 and {t["status"] for t in final.values()} == {"ok"}
    assert all(final[tid] == row for tid, row in done.items())  # what succeeded was kept as it was


def test_all_done_or_skipped_exits_0(tmp_path, capsys):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    empty = write_tif(tmp_path / "empty.tif", blocks(384) * 0, transform, nodata=0)
    out = tmp_path / "o.gpkg"
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        assert _describe((empty, empty), out, url) == 0
    line = capsys.readouterr().out
    assert "0 captioned" in line and "1 skipped (nodata)" in line and "0 errors" in line
