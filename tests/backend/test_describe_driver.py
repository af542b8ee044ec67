"""``ccexpert describe`` through the one run driver (issue 26): a ``--batch-size`` above the server's ``max_batch``
and requests over its byte budget are split to fit, not refused; the output contract (lock, re-count, resume
without a fingerprint) holds."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest
from ccexpert.cli import main
from ccexpert.service import Settings, create_app
from ccexpert_changes.core.fields import LAYER_NAME
from ccexpert_changes.core.output_lock import OutputLock, lock_path
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


# -- one run per output (issue 24 finding 2) ---------------------------------------------------------------------


class Gate(EchoEngine):
    """Holds its first request until ``release`` is set, so a second run can start while the first one writes."""

    def __init__(self):
        super().__init__()
        self.armed = False  # not during the server's warm-up
        self.entered, self.release = threading.Event(), threading.Event()

    def caption(self, pairs, max_new_tokens: int = 64):
        if self.armed:
            self.entered.set()
            assert self.release.wait(30)
        return super().caption(pairs, max_new_tokens)


def test_a_second_run_on_the_same_output_is_refused_and_the_first_one_completes(rasters, tmp_path, capsys):
    before, after = rasters
    out = tmp_path / "o.gpkg"
    engine = Gate()
    with thread_server(create_app(Settings(), engine)) as url:
        engine.armed = True
        first: dict[str, int] = {}
        thread = threading.Thread(target=lambda: first.setdefault("code", _run(before, after, out, "--backend", url)))
        thread.start()
        assert engine.entered.wait(30)
        assert lock_path(out).exists()
        second = _run(before, after, out, "--backend", url, "--overwrite")
        err = capsys.readouterr().err
        engine.release.set()
        thread.join(60)
    assert second == 2 and "being written by another run" in err and "Traceback" not in err
    assert first["code"] == 0 and _statuses(out) == ["ok"] * 9
    assert not lock_path(out).exists()  # released at the end


def test_the_lock_is_released_when_the_run_fails(rasters, tmp_path, capsys):
    before, after = rasters
    out = tmp_path / "o.gpkg"
    assert _run(before, after, out, "--backend", "http://127.0.0.1:9", "--retry-budget", "1") == 4
    assert not lock_path(out).exists()
    out.write_bytes(b"not a GeoPackage")
    with thread_server(create_app(Settings(), EchoEngine())) as url:  # refused after the lock was taken
        assert _run(before, after, out, "--backend", url, "--resume") == 2
    assert "is damaged (file is not a database)" in capsys.readouterr().err
    assert not lock_path(out).exists() and out.read_bytes() == b"not a GeoPackage"


def test_a_stale_lock_of_a_dead_process_is_taken_over(rasters, tmp_path, capsys):
    before, after = rasters
    out = tmp_path / "o.gpkg"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_path(out).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "run": "x"}))
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        assert _run(before, after, out, "--backend", url) == 0
    assert _statuses(out) == ["ok"] * 9 and not lock_path(out).exists()


def test_a_live_lock_is_refused_before_anything_is_written(rasters, tmp_path, capsys):
    before, after = rasters
    out = tmp_path / "o.gpkg"
    with OutputLock(out), thread_server(create_app(Settings(), EchoEngine())) as url:
        assert _run(before, after, out, "--backend", url) == 2
    err = capsys.readouterr().err
    assert f"process {os.getpid()}" in err and str(lock_path(out)) in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_output_changed_behind_the_runs_back_is_not_reported_as_success(rasters, tmp_path, capsys, monkeypatch):
    """What two unlocked runs did (the second's file replaced the first's): rows vanish while the run writes."""
    from ccexpert import gpkg_output

    before, after = rasters
    out = tmp_path / "o.gpkg"
    real = gpkg_output.TileWriter.write
    calls = {"n": 0}

    def write_then_lose_rows(self, tiles):
        written = real(self, tiles)
        calls["n"] += 1
        if calls["n"] == 2:
            with sqlite3.connect(self.target) as db:
                db.execute(f'DELETE FROM "{LAYER_NAME}" WHERE fid <= 2')
        return written

    monkeypatch.setattr(gpkg_output.TileWriter, "write", write_then_lose_rows)
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        code = _run(before, after, out, "--backend", url, "--batch-size", "2")
    err = capsys.readouterr().err
    assert code == 3 and "holds 7 rows where this run left 9" in err


# -- a resume checks what it resumes (issue 24 finding 3) --------------------------------------------------------


@pytest.fixture
def made(rasters, tmp_path):
    """An output of ``rasters``, finished: (before, after, output)."""
    before, after = rasters
    out = tmp_path / "o.gpkg"
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        assert _run(before, after, out, "--backend", url) == 0
    return before, after, out


@pytest.mark.parametrize(
    "damage_sql",
    [
        "DELETE FROM gpkg_metadata_reference; DELETE FROM gpkg_metadata",  # the run metadata rows deleted
        "UPDATE gpkg_metadata SET metadata = replace(metadata, '\"grid_hash\"', 'grid_hash\"')",  # not JSON any more
    ],
    ids=["deleted", "unreadable"],
)
def test_resume_without_a_readable_fingerprint_is_refused_and_force_is_the_way_out(made, capsys, damage_sql):
    before, after, out = made
    with sqlite3.connect(out) as db:
        db.executescript(damage_sql)
    kept = out.read_bytes()
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        # before and after swapped: the run the issue saw accepted ("9 already done", exit 0)
        assert _run(after, before, out, "--backend", url, "--resume") == 2
        err = capsys.readouterr().err
        assert "cannot be checked" in err and "--force" in err and "Traceback" not in err
        assert out.read_bytes() == kept
        assert _run(before, after, out, "--backend", url, "--resume", "--force") == 0
    assert "9 already done" in capsys.readouterr().out


def test_resume_of_a_damaged_geopackage_is_refused_even_with_force(made, capsys):
    before, after, out = made
    with sqlite3.connect(out) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'gpkg_metadata'").fetchone()
        (page,) = db.execute("PRAGMA page_size").fetchone()
    with open(out, "r+b") as f:  # the metadata table's page header: not a b-tree page any more
        f.seek((root - 1) * page)
        f.write(b"\xff" * 12)
    kept = out.read_bytes()
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        for extra in ((), ("--force",)):
            assert _run(before, after, out, "--backend", url, "--resume", *extra) == 2
            err = capsys.readouterr().err
            assert "is damaged" in err and "--overwrite" in err and "Traceback" not in err
    assert out.read_bytes() == kept


# -- a disk that fills while the output is created (issue 24 finding 10) -----------------------------------------


def _limit_file_size(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail like a full disk (EFBIG), no signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("limit", [4096, 60_000])
def test_a_disk_full_while_creating_the_output_is_one_line_exit_4_and_no_leftovers(rasters, tmp_path, limit):
    before, after = rasters
    out = tmp_path / "new" / "o.gpkg"
    out.parent.mkdir()
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        done = subprocess.run(
            [sys.executable, "-m", "ccexpert.cli", "describe", str(before), str(after), "-o", str(out), "-q"]
            + ["--backend", url],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=_limit_file_size(limit),
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    lines = [line for line in done.stderr.splitlines() if line.startswith("ccexpert describe:")]
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr and len(lines) == 1 and "cannot create" in lines[0], done.stderr
    assert list(out.parent.iterdir()) == []  # no output, no staged file, no lock


def test_the_abstract_after_a_resume_counts_the_layer_not_the_last_run(rasters, tmp_path, monkeypatch):
    """Issue 25 finding 3: the abstract said "5 captioned" for a layer holding 9 after a resume."""
    from ccexpert import gpkg_output
    from ccexpert_changes.core.layer_metadata import read_abstract

    before, after = rasters
    out = tmp_path / "o.gpkg"
    real = gpkg_output.TileWriter.write
    calls = {"n": 0}

    def full_disk_at_the_third_batch(self, tiles):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(self, tiles)

    with thread_server(create_app(Settings(), EchoEngine())) as url:
        monkeypatch.setattr(gpkg_output.TileWriter, "write", full_disk_at_the_third_batch)
        assert _run(before, after, out, "--backend", url, "--batch-size", "2") == 3  # 4 tiles kept
        monkeypatch.setattr(gpkg_output.TileWriter, "write", real)
        assert _run(before, after, out, "--backend", url, "--resume") == 0  # 5 more
    assert _statuses(out) == ["ok"] * 9
    abstract = read_abstract(out, LAYER_NAME)[1]
    assert "9 tiles captioned, 9 changed" in abstract, abstract
