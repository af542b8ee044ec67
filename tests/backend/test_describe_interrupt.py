"""Ctrl-C in ``ccexpert describe`` with requests out (issue 24 finding 6), on a real process and a real backend: the
first Ctrl-C stops sending and writes what arrives within the grace, exit 130, resumable; the second leaves at once
with a valid output; a stalled backend never holds the process."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from ccexpert.cli import main
from ccexpert.describe import CANCEL_GRACE_S
from ccexpert.service import Settings, create_app
from ccexpert_changes.core.fields import LAYER_NAME
from ccexpert_changes.core.output_lock import lock_path
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, blocks, thread_server, write_tif


class Gate(EchoEngine):
    """Once armed, every request waits for ``release`` (a slow or stalled backend)."""

    def __init__(self):
        super().__init__()
        self.armed = False
        self.entered, self.release = threading.Event(), threading.Event()

    def caption(self, pairs, max_new_tokens: int = 64):
        if self.armed:
            self.entered.set()
            self.release.wait(120)
        return super().caption(pairs, max_new_tokens)


@pytest.fixture
def rasters(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    return (
        write_tif(tmp_path / "before.tif", blocks(1152), transform),
        write_tif(tmp_path / "after.tif", blocks(1152) + 3, transform),
    )


@pytest.fixture
def gated():
    engine = Gate()
    with thread_server(create_app(Settings(), engine)) as url:
        engine.armed = True
        try:
            yield engine, url
        finally:
            engine.release.set()


class Child:
    """``ccexpert describe`` in its own process; its stderr lines arrive in a queue."""

    def __init__(self, before, after, out, url):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ccexpert.cli", "describe", str(before), str(after), "-o", str(out), "-q"]
            + ["--backend", url, "--batch-size", "2", "--in-flight", "2"],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            self.seen.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))

    def interrupt(self) -> float:
        self.proc.send_signal(signal.SIGINT)
        return time.monotonic()


def _rows(out) -> list[tuple]:
    with sqlite3.connect(out) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return db.execute(f'SELECT tile_id, status FROM "{LAYER_NAME}"').fetchall()


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_first_ctrl_c_keeps_the_answers_that_arrive_then_exits_130_and_resumes(rasters, tmp_path, gated, capsys):
    engine, url = gated
    before, after = rasters
    out = tmp_path / "o.gpkg"
    child = Child(before, after, out, url)
    assert engine.entered.wait(60)  # requests are at the backend
    sent = child.interrupt()
    child.wait_for("nothing more is sent")
    engine.release.set()  # the backend answers now, within the grace
    assert child.proc.wait(60) == 130
    assert time.monotonic() - sent < CANCEL_GRACE_S + 5
    rows = _rows(out)
    assert rows and {status for _, status in rows} == {"ok"}  # the answers waited for are written
    assert len(rows) < 9 and _leftovers(tmp_path) == []
    assert main(["describe", str(before), str(after), "-o", str(out), "-q", "--backend", url, "--resume"]) == 0
    tiles = [tile for tile, _ in _rows(out)]
    assert len(tiles) == len(set(tiles)) == 9


def test_a_stalled_backend_holds_one_ctrl_c_for_the_grace_only(rasters, tmp_path, gated):
    engine, url = gated
    before, after = rasters
    out = tmp_path / "o.gpkg"
    child = Child(before, after, out, url)
    assert engine.entered.wait(60)
    sent = child.interrupt()
    assert child.proc.wait(CANCEL_GRACE_S + 10) == 130
    assert time.monotonic() - sent >= CANCEL_GRACE_S - 0.5  # it did wait for answers
    assert _rows(out) == [] and not lock_path(out).exists() and _leftovers(tmp_path) == []


def test_a_second_ctrl_c_leaves_at_once_with_a_valid_output(rasters, tmp_path, gated):
    engine, url = gated
    before, after = rasters
    out = tmp_path / "o.gpkg"
    child = Child(before, after, out, url)
    assert engine.entered.wait(60)
    child.interrupt()
    child.wait_for("nothing more is sent")
    second = child.interrupt()
    assert child.proc.wait(CANCEL_GRACE_S + 10) == 130
    assert time.monotonic() - second < CANCEL_GRACE_S / 2  # at once, not after the grace
    assert _rows(out) == [] and not lock_path(out).exists() and _leftovers(tmp_path) == []
