"""Start-up of the service: a model that loads but cannot caption never looks ready, and `ccexpert serve` exits 3."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import requests
from ccexpert.samples import sample_pair
from ccexpert.service import Settings, create_app
from service_helpers import (
    EchoEngine,
    EchoResult,
    free_port,
    serve_process,
    stop_process,
    thread_server,
    thread_server_no_wait,
)


class _BrokenEngine(EchoEngine):
    """Loads (info works) but its captions are broken in the way given."""

    def __init__(self, mode: str):
        super().__init__(chip_size=64)
        self.mode = mode

    def caption(self, pairs, max_new_tokens: int = 64):
        self.pairs_seen += len(pairs)
        if self.mode == "raises":
            raise TypeError("CCExpertModelOutputWithPast.__init__() got an unexpected keyword argument 'x'")
        if self.mode == "empty":
            return [EchoResult("", 0.5, False, 1) for _ in pairs]
        return [EchoResult("a house", float("nan"), True, 3) for _ in pairs]


def _wait_failed(url: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = requests.get(url + "/readyz", timeout=5)
        assert r.status_code == 503, "a model that cannot caption must never be ready"
        if r.json()["error"]["code"] == "model_failed":
            return r.json()["error"]
        time.sleep(0.05)
    raise TimeoutError("readyz never reported model_failed")


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("raises", "unexpected keyword argument"),
        ("empty", "got no caption"),
        ("nan", "confidence nan"),
    ],
)
def test_model_that_cannot_caption_is_never_ready_and_reports_why(mode, reason):
    engine = _BrokenEngine(mode)
    failures: list[str] = []
    with thread_server_no_wait(create_app(Settings(), engine, on_failure=failures.append)) as url:
        error = _wait_failed(url)
        assert reason in error["message"]
        assert requests.get(url + "/v1/info").status_code == 503
        assert requests.get(url + "/healthz").status_code == 200  # alive, so the reason can be read
    assert engine.pairs_seen == 1  # the sample pair went through the engine
    assert len(failures) == 1 and reason in failures[0]


def test_ready_only_after_the_sample_pair_is_captioned():
    engine = EchoEngine(chip_size=64)
    with thread_server(create_app(Settings(), engine)) as url:
        assert requests.get(url + "/readyz").status_code == 200
    assert engine.batches[0] == 1 and engine.pairs_seen == 1
    before, after = sample_pair(64)
    assert before.shape == after.shape == (64, 64, 3) and before.dtype == np.uint8
    changed = np.abs(before.astype(int) - after.astype(int)).max(axis=2) > 30
    assert 0.05 < changed.mean() < 0.5  # a visible change on part of the chip, not a blank pair


def test_sample_pair_is_deterministic():
    first, second = sample_pair(384), sample_pair(384)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_serve_exits_3_when_the_checkpoint_loads_but_cannot_caption(tiny_model_dir, tmp_path):
    """A mis-converted checkpoint (image token id pointing at another token): it loads, every forward raises."""
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    config = json.loads((broken / "config.json").read_text())
    config["image_token_id"] = 5  # an ordinary token: the prompts' <image> placeholders are no longer found
    (broken / "config.json").write_text(json.dumps(config))
    log = tmp_path / "serve.log"
    process = serve_process(free_port(), "--model", str(broken), log_path=log)
    try:
        code = process.wait(180)
    finally:
        stop_process(process)
    text = log.read_text()
    assert code == 3, text
    assert "the model cannot serve captions" in text and "placeholder" in text


def test_serve_exits_3_when_the_model_folder_is_missing(tmp_path):
    log = tmp_path / "serve.log"
    process = serve_process(free_port(), "--model", str(tmp_path / "no-such-model"), log_path=log)
    try:
        code = process.wait(120)
    finally:
        stop_process(process)
    assert code == 3, log.read_text()
    assert "no-such-model" in log.read_text()
