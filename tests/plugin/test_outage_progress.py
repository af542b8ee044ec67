"""Progress during a backend outage inside QGIS (issue 25 finding 11): the client tells each wait for a retry, the
progress line shows it instead of a frozen time left, and the log gets the first retry only."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from ccexpert_changes.backend_client import BackendClient
from ccexpert_changes.core.retry import Waiting
from ccexpert_changes.core.run_loop import RunStats
from ccexpert_changes.run_feedback import RunProgress
from conftest import RecordingFeedback, free_port


@pytest.fixture(scope="module")
def stub(qgis_app):
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("stub_backend.py")), str(port)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/ok/v1/info", timeout=1)  # nosec B310 - loopback stub
            break
        except OSError:
            time.sleep(0.1)  # the stub process starting: not a test timing
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_each_retry_is_told_and_logged_once(stub, qgis_app):
    feedback = RecordingFeedback.make()
    client = BackendClient(f"{stub}/flaky{uuid.uuid4().hex[:8]}", feedback=feedback, backoff_s=0.01)
    told: list[Waiting] = []
    client.on_retry = told.append
    assert client.info()["model_name"] == "stub"  # two 503s, then success
    assert [w.attempt for w in told] == [2, 3] and all(w.give_up_in_s > 0 for w in told)
    assert sum("retrying in" in line for line in feedback.infos) == 1  # not one line per retry


def test_the_progress_line_shows_the_outage_then_the_pace_again(qgis_app):
    feedback = RecordingFeedback.make()
    texts: list[str] = []
    feedback.setProgressText = texts.append
    progress = RunProgress(feedback, 121)
    stats = RunStats(total=121, captioned=24)
    stats.waiting = Waiting(7, 28, 281)
    progress(stats)
    assert texts[-1] == "24/121 chips · waiting for the backend: attempt 7, next try in 28 s, giving up in 4 min 41 s"
    stats.record(2, 2)
    stats.captioned += 2
    progress(stats)
    assert "waiting" not in texts[-1] and texts[-1].startswith("26/121 chips")
