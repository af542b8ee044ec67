"""``ccexpert describe`` under faults (issue 16): an output that would destroy an input or the previous output
is refused before anything is touched, a resume checks what it resumes, a corrupt raster, a full disk or a
directory as output end in one clear line, and a run killed (SIGKILL) at random points then resumed writes every
tile exactly once."""

from __future__ import annotations

import errno
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from ccexpert.cli import main
from ccexpert.describe import DescribeOptions, EngineCaptioner, describe
from ccexpert.gpkg_output import read_tiles
from ccexpert.service import Settings, create_app
from ccexpert_changes.core.fields import LAYER_NAME
from rasterio.transform import from_origin
from service_helpers import ORIGIN, REPO, EchoEngine, blocks, echo_caption, thread_server, write_tif


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


def _tiles(out) -> dict[str, dict]:
    tiles, _ = read_tiles(out)
    return {t["tile_id"]: t for t in tiles}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or p.name.endswith("-journal"))


@pytest.fixture
def echo_backend():
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        yield url


# -- (1) nothing is deleted before every check has passed -------------------------------------------------------


def test_overwrite_never_deletes_a_file_it_then_refuses(rasters, tmp_path, capsys, echo_backend):
    before, after = rasters
    notes = tmp_path / "notes.txt"
    notes.write_text("field notes\n")
    assert _run(before, after, notes, "--overwrite", "--backend", echo_backend) == 2
    assert notes.read_text() == "field notes\n"
    assert "must be a GeoPackage" in capsys.readouterr().err
    # the output is one of the inputs: the imagery is never touched
    image = before.read_bytes()
    assert _run(before, after, before, "--overwrite", "--backend", echo_backend) == 2
    assert "is the before raster" in capsys.readouterr().err
    assert before.read_bytes() == image
    # ... under another name: a symlink, a hard link (a .gpkg name, so only the identity check catches them)
    (tmp_path / "link.gpkg").symlink_to(after)
    os.link(before, tmp_path / "hard.gpkg")
    for alias, which in (("link.gpkg", "after raster"), ("hard.gpkg", "before raster")):
        assert _run(before, after, tmp_path / alias, "--overwrite", "--backend", echo_backend) == 2
        assert f"is the {which}" in capsys.readouterr().err
    assert before.read_bytes() == image and after.stat().st_size > 0
    # ... or the AOI
    aoi = tmp_path / "aoi.gpkg"
    _aoi_file(aoi)
    aoi_bytes = aoi.read_bytes()
    assert _run(before, after, aoi, "--overwrite", "--aoi", str(aoi), "--backend", echo_backend) == 2
    assert "is the AOI" in capsys.readouterr().err and aoi.read_bytes() == aoi_bytes
    assert _leftovers(tmp_path) == []


def _aoi_file(path: Path) -> None:
    import fiona
    from shapely.geometry import box, mapping

    x0, y0 = ORIGIN[0] + 10, ORIGIN[1] - 10
    with fiona.open(
        path, "w", driver="GPKG", crs="EPSG:32633", schema={"geometry": "Polygon", "properties": {"name": "str"}}
    ) as dst:
        dst.write({"geometry": mapping(box(x0, y0 - 50, x0 + 50, y0)), "properties": {"name": "aoi"}})


class FailsAfter(EchoEngine):
    """Captions its first ``ok_calls`` engine calls (the service's start-up sample is the first), then fails."""

    def __init__(self, ok_calls: int):
        super().__init__()
        self.ok_calls, self.calls = ok_calls, 0

    def caption(self, pairs, max_new_tokens: int = 64):
        self.calls += 1
        if self.calls > self.ok_calls:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super().caption(pairs, max_new_tokens)


def test_overwrite_that_fails_before_captioning_keeps_the_old_output(rasters, tmp_path, capsys, echo_backend):
    before, after = rasters
    out = tmp_path / "o.gpkg"
    assert _run(before, after, out, "--backend", echo_backend) == 0
    old = _tiles(out)
    assert len(old) == 9
    with thread_server(create_app(Settings(), FailsAfter(ok_calls=1))) as failing:
        assert _run(before, after, out, "--overwrite", "--backend", failing, "--retries", "0") == 4
    err = capsys.readouterr().err
    assert "illegal memory access" in err and "left as it was" in err
    assert _tiles(out) == old  # same rows, same run id: the old output is intact
    assert _leftovers(tmp_path) == []
    # a crash (Ctrl-C, kill) before the first captioned batch leaves it intact too
    with pytest.raises(KeyboardInterrupt):
        describe(
            DescribeOptions(str(before), str(after), str(out), overwrite=True, progress=False),
            Interrupting(EchoEngine(), after_batches=0),
        )
    assert _tiles(out) == old and _leftovers(tmp_path) == []
    # an --overwrite run that captions replaces it, and it goes on in place from its first captioned batch
    with pytest.raises(KeyboardInterrupt):
        describe(
            DescribeOptions(str(before), str(after), str(out), overwrite=True, batch_size=2, progress=False),
            Interrupting(EchoEngine(), after_batches=2),
        )
    new = _tiles(out)
    assert len(new) == 4 and not set(t["run_id"] for t in new.values()) & set(t["run_id"] for t in old.values())
    assert _run(before, after, out, "--resume", "--backend", echo_backend) == 0
    assert len(_tiles(out)) == 9 and _leftovers(tmp_path) == []


class Interrupting(EngineCaptioner):
    def __init__(self, engine, after_batches: int):
        super().__init__(engine)
        self.left = after_batches

    def caption(self, items):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().caption(items)


# -- (3) a resume checks what it resumes ------------------------------------------------------------------------


def test_resume_refuses_an_output_of_another_scene_and_force_overrides(tmp_path, capsys, echo_backend):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "b.tif", blocks(1152), transform)
    after = write_tif(tmp_path / "a.tif", blocks(1152) + 3, transform)
    other = write_tif(tmp_path / "other.tif", blocks(1152, seed=1)[:, ::-1, :].copy(), transform)  # same grid
    out = tmp_path / "o.gpkg"
    assert _run(before, after, out, "--backend", echo_backend) == 0
    first = _tiles(out)
    capsys.readouterr()
    assert _run(other, after, out, "--resume", "--backend", echo_backend) == 2
    err = capsys.readouterr().err
    assert "before raster" in err and str(other) in err and "--force" in err
    assert "after raster" not in err  # only what differs is named
    assert _tiles(out) == first  # refused before touching anything
    # other bands on the same grid are another run too
    assert _run(before, after, out, "--resume", "--bands", "3,2,1", "--backend", echo_backend) == 2
    assert "bands: '1,2,3' then, '3,2,1' now" in capsys.readouterr().err
    # the same scene moved elsewhere is still the same scene
    moved = tmp_path / "moved"
    moved.mkdir()
    os.rename(before, moved / "b.tif")
    assert _run(moved / "b.tif", after, out, "--resume", "--backend", echo_backend) == 0
    assert "9 already done" in capsys.readouterr().out
    # --force: the rare case where the user knows better (e.g. the same pixels re-exported)
    assert _run(other, after, out, "--resume", "--force", "--backend", echo_backend) == 0
    assert "9 already done" in capsys.readouterr().out
    assert _run(other, after, out, "--force", "--backend", echo_backend) == 2  # --force only goes with --resume
    assert "--force" in capsys.readouterr().err


def test_resume_refuses_another_model(rasters, tmp_path):
    before, after = rasters
    out = tmp_path / "o.gpkg"
    describe(DescribeOptions(str(before), str(after), str(out), progress=False), EngineCaptioner(EchoEngine()))

    class NewerEcho(EchoEngine):
        def info(self):
            return {**super().info(), "model_version": "2"}

    with pytest.raises(ValueError, match=r"model: 'echo 1' then, 'echo 2' now"):
        describe(
            DescribeOptions(str(before), str(after), str(out), resume=True, progress=False),
            EngineCaptioner(NewerEcho()),
        )


# -- (7) one clear line, the right exit code, a consistent GeoPackage -------------------------------------------


def _deflate_tif(path: Path, data: np.ndarray) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(*ORIGIN, 0.5, 0.5),
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    ) as dst:
        dst.write(data)
    return path


def test_truncated_geotiff_is_refused_before_anything(tmp_path, capsys, echo_backend):
    data = np.random.default_rng(0).integers(0, 255, (3, 1152, 1152), dtype=np.uint8)
    before = _deflate_tif(tmp_path / "b.tif", data)
    after = _deflate_tif(tmp_path / "a.tif", data)
    with open(after, "r+b") as f:  # a download cut short: the header is there, the last tiles are not
        f.truncate(int(after.stat().st_size * 0.6))
    out = tmp_path / "o.gpkg"
    assert _run(before, after, out, "--backend", echo_backend) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "after raster" in err and "cannot be read" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists() and _leftovers(tmp_path) == []


def test_geotiff_corrupt_in_the_middle_fails_those_tiles_only(tmp_path, capsys, echo_backend):
    data = blocks(1152)
    data += np.random.default_rng(0).integers(0, 3, data.shape, dtype=np.uint8)  # keep tiles from compressing away
    before = _deflate_tif(tmp_path / "b.tif", data)
    after = _deflate_tif(tmp_path / "a.tif", data)
    with rasterio.open(after) as src:  # garble the compressed bytes of block x 3, y 2: pixels 768-1023 x 512-767
        offset = int(src.get_tag_item("BLOCK_OFFSET_3_2", "TIFF", bidx=1))
    with open(after, "r+b") as f:
        f.seek(offset + 16)
        f.write(b"\xff" * 512)
    out = tmp_path / "o.gpkg"
    assert _run(before, after, out, "--backend", echo_backend) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first_error = next(line for line in err.splitlines() if line.startswith("first error:"))
    assert "r00001_c00002" in first_error and "cannot read the after raster" in first_error
    tiles = _tiles(out)
    assert len(tiles) == 9 and [t["status"] for t in tiles.values()].count("error") == 1


def test_full_disk_stops_with_one_line_and_keeps_what_was_written(rasters, tmp_path, capsys, monkeypatch, echo_backend):
    from ccexpert import gpkg_output

    before, after = rasters
    real = gpkg_output.TileWriter.write
    calls = {"n": 0}

    def fills_the_disk(self, tiles):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, tiles)

    monkeypatch.setattr(gpkg_output.TileWriter, "write", fills_the_disk)
    out = tmp_path / "o.gpkg"
    assert _run(before, after, out, "--backend", echo_backend, "--batch-size", "2") == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "No space left on device" in err and str(out) in err
    assert "4 captioned" in err and "5 not reached" in err  # the failed batch is not counted as written
    assert {t["status"] for t in _tiles(out).values()} == {"ok"} and len(_tiles(out)) == 4
    # GDAL says it its own way (a RuntimeError): the same clear stop
    calls["n"] = 0

    def gdal_full(self, tiles):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("GDAL Error: failed to execute insert : database or disk is full")
        return real(self, tiles)

    monkeypatch.setattr(gpkg_output.TileWriter, "write", gdal_full)
    assert _run(before, after, out, "--backend", echo_backend, "--resume") == 3
    err = capsys.readouterr().err
    assert "database or disk is full" in err and "Traceback" not in err
    monkeypatch.setattr(gpkg_output.TileWriter, "write", real)
    assert _run(before, after, out, "--backend", echo_backend, "--resume") == 0
    tiles = _tiles(out)
    assert len(tiles) == 9 and {t["status"] for t in tiles.values()} == {"ok"}


def test_output_that_is_a_directory_is_refused(rasters, tmp_path, capsys, echo_backend):
    before, after = rasters
    folder = tmp_path / "results.gpkg"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    assert _run(before, after, folder, "--overwrite", "--backend", echo_backend) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err and "Traceback" not in err and (folder / "keep.txt").exists()


# -- kill at random points, resume: every tile exactly once ----------------------------------------------------


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute(f'SELECT COUNT(*) FROM "{LAYER_NAME}"').fetchone()[0]
    except sqlite3.DatabaseError:
        return 0


def test_killed_at_random_points_then_resumed_every_tile_exactly_once(tmp_path):
    """A real ``ccexpert describe`` process against a thread server (EchoEngine) is SIGKILLed three times at
    random points (before its first row, mid-run by row count, at a random time), each time resumed; the last
    resume runs to the end. Bounded: 81 chips, about 20 s."""
    seed = int(os.environ.get("CCEXPERT_FAULT_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "b.tif", blocks(1152, chip=128), transform)
    after = write_tif(tmp_path / "a.tif", blocks(1152, chip=128) + 2, transform)
    out = tmp_path / "o.gpkg"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    engine = EchoEngine(delay_per_pair=0.02)
    kills = []
    with thread_server(create_app(Settings(), engine)) as url:
        cmd = [
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
            "--chip-size",
            "128",
            "--batch-size",
            "3",
            "-q",
        ]
        plans = [("time", rng.uniform(0.05, 0.6)), ("rows", rng.randint(3, 30)), ("rows", rng.randint(31, 70))]
        for kind, value in plans:
            proc = subprocess.Popen(
                cmd + (["--resume"] if kills else []),
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            start = time.monotonic()
            while proc.poll() is None and time.monotonic() - start < 60:
                if (kind == "time" and time.monotonic() - start >= value) or (kind == "rows" and _rows(out) >= value):
                    break
                time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills.append((kind, value, _rows(out)))
            proc.wait(timeout=30)
            proc.stderr.close()
        done = subprocess.run(cmd + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"seed {seed}, kills {kills}: {done.stderr[-2000:]}"
    assert len(kills) >= 2, f"seed {seed}: the runs ended before they could be killed ({kills})"
    with sqlite3.connect(out) as db:
        total, distinct = db.execute(f'SELECT COUNT(*), COUNT(DISTINCT tile_id) FROM "{LAYER_NAME}"').fetchone()
    tiles = _tiles(out)
    assert total == distinct == 81, f"seed {seed}, kills {kills}: {total} rows, {distinct} tiles"
    assert {t["status"] for t in tiles.values()} == {"ok"}
    for t in tiles.values():  # no result landed on the wrong tile (uint8 block values wrap around)
        value = ((t["row"] - 1) * 9 + t["col"]) * 10 % 256  # row/col are 1-based in the layer
        assert t["caption"] == echo_caption(value, (value + 2) % 256), (seed, t)
    assert _leftovers(tmp_path) == [], f"seed {seed}: temporary files left after the last run"
