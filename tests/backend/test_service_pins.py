"""Service behaviours no other test pinned (issue 30), each checked against a broken copy: the auth scheme is
case-insensitive, a failed pair is not cached under its idempotency key, round-robin between clients rotates,
and the PNG header check covers both dimensions."""

from __future__ import annotations

import threading

import pytest
import requests
from ccexpert.service import Settings, create_app
from ccexpert.service.auth import key_line
from ccexpert.service.batching import DynamicBatcher
from service_helpers import EchoEngine, EchoResult, b64, echo_caption, png_bytes, raw_png, solid, thread_server

CHIP = 64
KEY = "pins-key-for-tests"


def body(*pairs):
    return {"pairs": [{"id": i, "before": b64(b), "after": b64(a)} for i, b, a in pairs]}


def good(pair_id="p", b=10, a=20):
    return pair_id, png_bytes(solid(b, CHIP)), png_bytes(solid(a, CHIP))


class FailsOnce(EchoEngine):
    """Fails the first time it sees a pair whose before image has mean 77 (as a replica dying mid-batch does:
    the error carries ``retry_after``, so the service answers 503 and tells the client to resend the same ids)."""

    def __init__(self):
        super().__init__(chip_size=CHIP)
        self.failed = False

    def caption(self, pairs, max_new_tokens: int = 64):
        if not self.failed and any(int(round(float(b.mean()))) == 77 for b, _ in pairs):
            self.failed = True
            error = RuntimeError("replica died")
            error.retry_after = 1.0  # type: ignore[attr-defined]
            raise error
        return super().caption(pairs, max_new_tokens)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(key_line(KEY, "alice") + "\n", encoding="utf-8")
    keys.chmod(0o600)
    engine = FailsOnce()
    with thread_server(create_app(Settings(api_keys_file=keys, max_wait_ms=1), engine)) as url:
        yield url, engine


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_auth_scheme_is_case_insensitive(keyed, scheme):
    """RFC 7235: the scheme is a case-insensitive token. Broken copy: ``scheme != "Bearer"`` refused
    ``bearer KEY`` with 401 (this test failed)."""
    url, _ = keyed
    r = requests.post(url + "/v1/captions", json=body(good()), headers={"Authorization": f"{scheme} {KEY}"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["caption"] == echo_caption(10, 20)
    r = requests.get(url + "/v1/auth/check", headers={"Authorization": f"{scheme} {KEY}"})
    assert r.status_code == 200 and r.json()["label"] == "alice"
    r = requests.get(url + "/v1/auth/check", headers={"Authorization": f"{scheme} wrong"})
    assert r.status_code == 401  # the key itself is not case-insensitive


def test_a_failed_pair_is_not_cached_under_its_idempotency_key(keyed):
    """The service answers 503 "resend the same ids"; the resend (same id, same chips) must be computed again.
    Broken copy: failures cached like results (``_settle`` storing every key) answered 503 forever."""
    url, engine = keyed
    headers = {"Authorization": f"Bearer {KEY}"}
    pair = good("retry-me", 77, 30)
    r = requests.post(url + "/v1/captions", json=body(pair), headers=headers)
    assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable", r.text
    assert "resend the same ids" in r.json()["error"]["message"]
    seen = engine.pairs_seen
    r = requests.post(url + "/v1/captions", json=body(pair), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["caption"] == echo_caption(77, 30) and engine.pairs_seen == seen + 1
    r = requests.post(url + "/v1/captions", json=body(pair), headers=headers)  # a success is cached
    assert r.status_code == 200 and engine.pairs_seen == seen + 1


@pytest.mark.parametrize(("width", "height"), [(CHIP, 100_000), (100_000, CHIP)])
def test_the_png_size_check_covers_both_dimensions(keyed, width, height):
    """A 64 x 100000 PNG of zeros is a few kB on the wire and 19 MB decoded: refused from its header.
    Broken copy: checking the width only decoded the tall one and captioned it (200; this test failed)."""
    url, _ = keyed
    bomb = raw_png(width, height, sample=0)
    assert len(bomb) < 200_000
    r = requests.post(url + "/v1/captions", json=body(("p", bomb, bomb)), headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "wrong_size" and f"expected {CHIP}x{CHIP}, got {width}x{height}" in error["message"]


class Gate(EchoEngine):
    """Holds its first batch until released, and records which client's pairs each batch held (the before value
    says: client i sends before = 10 * (i + 1))."""

    def __init__(self):
        super().__init__(chip_size=8)
        self.entered, self.release = threading.Event(), threading.Event()
        self.clients: list[list[int]] = []

    def caption(self, pairs, max_new_tokens: int = 64):
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)
            return [EchoResult("plug", 0.5, True, 1) for _ in pairs]
        self.clients.append([int(b[0, 0, 0]) // 10 - 1 for b, _ in pairs])
        return super().caption(pairs, max_new_tokens)


def test_round_robin_rotates_so_a_fifth_client_is_served_in_the_second_batch():
    """Five clients with 8 pairs each, batches of 4: the fifth client's first pair goes in the second batch and
    every batch holds 4 different clients. Broken copy: without ``move_to_end`` (no rotation) the first four
    clients took every batch until their queues were empty and client 4 waited 8 batches (this test failed)."""
    engine = Gate()
    batcher = DynamicBatcher(engine, max_batch=4, max_wait_s=0.0, max_pending=1000).start()
    try:
        plug = batcher.submit("plug", [(solid(1, 8), solid(1, 8))])
        assert engine.entered.wait(30)  # the worker is busy: what follows queues up deterministically
        futures = [
            batcher.submit(f"client{i}", [(solid(10 * (i + 1), 8), solid(0, 8))] * 8, keys=None) for i in range(5)
        ]
        engine.release.set()
        plug[0].result(30)
        for future in (f for client in futures for f in client):
            future.result(30)
    finally:
        batcher.stop()
    assert len(engine.clients) == 10 and all(len(set(batch)) == 4 for batch in engine.clients)
    assert engine.clients[:3] == [[0, 1, 2, 3], [4, 0, 1, 2], [3, 4, 0, 1]]
