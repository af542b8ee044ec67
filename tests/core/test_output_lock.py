"""One run per output (issue 24 finding 2): the lock file's rules, without a run around them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from ccexpert_changes.core.output_lock import OutputBusy, OutputLock, lock_path


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_held_lock_refuses_a_second_one_even_in_the_same_process(tmp_path):
    out = tmp_path / "o.gpkg"
    with OutputLock(out), pytest.raises(OutputBusy, match=f"process {os.getpid()}"):
        OutputLock(out).acquire()
    assert not lock_path(out).exists()
    with OutputLock(out):  # free again
        pass


def test_released_on_an_exception(tmp_path):
    out = tmp_path / "o.gpkg"
    with pytest.raises(KeyboardInterrupt), OutputLock(out):
        raise KeyboardInterrupt
    assert not lock_path(out).exists() and list(tmp_path.iterdir()) == []


def test_a_dead_owner_is_stale_and_taken_over(tmp_path):
    out = tmp_path / "o.gpkg"
    stale = {"pid": _dead_pid(), "host": socket.gethostname(), "run": "old"}
    lock_path(out).write_text(json.dumps(stale))
    with OutputLock(out) as lock:
        assert lock.took_over == stale
        assert json.loads(lock_path(out).read_text())["run"] == lock.token
    assert list(tmp_path.iterdir()) == []


def test_garbage_in_the_lock_file_is_stale(tmp_path):
    out = tmp_path / "o.gpkg"
    lock_path(out).write_text("")
    with OutputLock(out):
        pass


def test_a_lock_of_another_host_is_refused_with_the_file_to_delete(tmp_path):
    out = tmp_path / "o.gpkg"
    lock_path(out).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "run": "t"}))
    with pytest.raises(OutputBusy) as info:
        OutputLock(out).acquire()
    assert "on elsewhere.example" in str(info.value) and str(lock_path(out)) in str(info.value)
    assert lock_path(out).exists()  # not ours to remove


def test_release_never_removes_a_lock_that_another_run_took_over(tmp_path):
    out = tmp_path / "o.gpkg"
    lock = OutputLock(out).acquire()
    lock_path(out).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "run": "other"}))
    lock.release()
    assert lock_path(out).exists()
