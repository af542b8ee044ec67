"""CCExpertClient against scripted HTTP servers on 127.0.0.1: retries, backoff, timeouts, errors, ids."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from ccexpert.client import CCExpertClient, ChipPair, ServiceError, encode_png
from ccexpert.service import Settings, create_app
from service_helpers import EchoEngine, echo_caption, free_port, solid, thread_server


class Scripted:
    """A server answering POSTs from a script of (status, body, headers, delay); records request bodies."""

    def __init__(self, script):
        self.script = list(script)
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers["Content-Length"])
                outer.bodies.append(json.loads(self.rfile.read(length)))
                status, body, headers, delay = outer.script.pop(0) if outer.script else (200, None, {}, 0)
                time.sleep(delay)
                if body is None:  # echo a valid answer for the ids sent
                    ids = [p["id"] for p in outer.bodies[-1]["pairs"]]
                    body = {
                        "model": "m",
                        "results": [
                            {
                                "id": i,
                                "caption": f"cap {i}",
                                "confidence": 0.5,
                                "changed": True,
                                "status": "ok",
                                "error": None,
                                "timing_ms": 1.0,
                            }
                            for i in ids
                        ],
                    }
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def err(status, code, pair_id=None, headers=None, delay=0.0):
    return (status, {"error": {"code": code, "message": f"{code} happened", "id": pair_id}}, headers or {}, delay)


PAIRS = [ChipPair("t1", solid(1, 8), solid(2, 8)), ChipPair("t2", solid(3, 8), solid(4, 8))]


@pytest.fixture
def scripted():
    servers = []

    def make(script):
        servers.append(Scripted(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_retries_5xx_and_429_then_succeeds_with_the_same_ids(scripted):
    server = scripted([err(503, "not_ready"), err(429, "overloaded", headers={"Retry-After": "0"}), err(502, "bad")])
    client = CCExpertClient(server.url, retries=4, backoff=0.01)
    results = client.caption(PAIRS)
    assert [r["id"] for r in results] == ["t1", "t2"] and results[0]["model"] == "m"
    assert len(server.bodies) == 4
    assert all(b == server.bodies[0] for b in server.bodies)  # identical resends: ids are idempotency keys


def test_retry_after_is_honoured(scripted):
    server = scripted([err(429, "overloaded", headers={"Retry-After": "1"})])
    t0 = time.monotonic()
    CCExpertClient(server.url, retries=2, backoff=0.01).caption(PAIRS)
    assert time.monotonic() - t0 >= 1.0


def test_gives_up_after_retries_with_the_last_error(scripted):
    server = scripted([err(500, "internal_error")] * 3)
    with pytest.raises(ServiceError, match="failed after 3 attempts: HTTP 500 internal_error"):
        CCExpertClient(server.url, retries=2, backoff=0.01).caption(PAIRS)
    assert len(server.bodies) == 3


def test_4xx_is_not_retried_and_names_the_pair(scripted):
    server = scripted([err(400, "wrong_size", pair_id="t2")])
    with pytest.raises(ServiceError) as info:
        CCExpertClient(server.url, retries=3, backoff=0.01).caption(PAIRS)
    assert (info.value.status, info.value.code, info.value.pair_id) == (400, "wrong_size", "t2")
    assert len(server.bodies) == 1


def test_read_timeout_is_retried(scripted):
    server = scripted([(200, None, {}, 1.5)])  # first answer comes too late
    client = CCExpertClient(server.url, read_timeout=0.5, retries=2, backoff=0.01)
    assert [r["id"] for r in client.caption(PAIRS)] == ["t1", "t2"]
    assert len(server.bodies) == 2


def test_connection_refused_is_not_retried_and_says_what_to_do():
    """Nothing listens on the port: one attempt, at once, and a message naming the URL and the fix."""
    url = f"http://127.0.0.1:{free_port()}"
    client = CCExpertClient(url, connect_timeout=0.5, retries=5, backoff=0.5)
    start = time.monotonic()
    with pytest.raises(ServiceError) as info:
        client.info()
    assert time.monotonic() - start < 2.0  # no backoff waits
    assert str(info.value) == (
        f"Cannot reach the CCExpert backend at {url} (connection refused). Start it with "
        "`ccexpert serve` or check the backend URL in the CCExpert settings."
    )
    assert info.value.code == "unreachable" and info.value.status is None
    with pytest.raises(ServiceError, match="connection refused"):
        client.caption(PAIRS)
    assert client.healthy() is False and client.ready() is False


def test_a_name_that_does_not_resolve_is_not_retried():
    client = CCExpertClient("http://ccexpert-backend.invalid:8000", connect_timeout=1, retries=5, backoff=0.5)
    start = time.monotonic()
    with pytest.raises(
        ServiceError,
        match=r"Cannot reach the CCExpert backend at "
        r"http://ccexpert-backend\.invalid:8000 \(host not found\)",
    ):
        client.info()
    assert time.monotonic() - start < 5.0


def test_a_dropped_connection_is_still_retried():
    """A server that accepts and closes without answering (a restart, a proxy): retried, unlike a refusal."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        client = CCExpertClient(f"http://127.0.0.1:{listener.getsockname()[1]}", retries=2, backoff=0.01)
        with pytest.raises(ServiceError, match="failed after 3 attempts: ConnectionError"):
            client.info()
        assert len(accepted) == 3
    finally:
        listener.close()


def test_mixed_up_answer_is_refused(scripted):
    bad = {"model": "m", "results": [{"id": "t2"}, {"id": "t1"}]}
    server = scripted([(200, bad, {}, 0)])
    with pytest.raises(ServiceError, match="answered ids"):
        CCExpertClient(server.url, retries=0).caption(PAIRS)


def test_encode_png_is_lossless_and_checks_input():
    from io import BytesIO

    from PIL import Image

    array = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(BytesIO(encode_png(array)))), array)
    assert encode_png(b"\x89PNG...") == b"\x89PNG..."
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        encode_png(np.zeros((16, 16), np.float32))


def test_against_the_real_service_with_key():
    engine = EchoEngine(chip_size=16)
    with thread_server(create_app(Settings(), engine)) as url:
        client = CCExpertClient(url, api_key="unused-when-auth-is-off")
        assert client.ready() and client.info()["chip_size"] == 16
        pairs = [ChipPair(f"id{i}", solid(i, 16), solid(i + 1, 16)) for i in range(5)]
        results = client.caption(pairs, max_new_tokens=4)
        assert [r["caption"] for r in results] == [echo_caption(i, i + 1) for i in range(5)]
        assert client.session.headers["User-Agent"].startswith("ccexpert-client/")


# -- issue 16: a retry budget in seconds, growing backoff with jitter, Retry-After as a floor, the key check ---------


class Busy:
    """Answers 429 (``Retry-After``) to every request for ``busy_for`` seconds, then serves; GET /v1/auth/check
    answers ``check`` (404 when None). Records when each request came."""

    def __init__(self, busy_for: float, retry_after: str | None = "0", check=None):
        self.times: list[float] = []
        self.start = time.monotonic()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/v1/auth/check":
                    status, body = check or (404, {"detail": "Not Found"})
                    return self._send(status, body)
                return self._send(404, {"detail": "Not Found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.times.append(time.monotonic())
                if time.monotonic() - outer.start < busy_for:
                    headers = {"Retry-After": retry_after} if retry_after is not None else {}
                    return self._send(429, {"error": {"code": "overloaded", "message": "busy", "id": None}}, headers)
                return self._send(
                    200,
                    {
                        "model": "m",
                        "results": [
                            {
                                "id": p["id"],
                                "caption": "c",
                                "confidence": 1.0,
                                "changed": False,
                                "status": "ok",
                                "error": None,
                                "timing_ms": 1,
                            }
                            for p in body["pairs"]
                        ],
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def busy():
    servers = []

    def make(*args, **kwargs):
        servers.append(Busy(*args, **kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_sustained_429_is_outlasted_within_the_budget(busy):
    """Busy for 1.5 s: more than the old 6 attempts, fine within a budget; the waits grow (capped) with jitter."""
    server = busy(1.5)
    client = CCExpertClient(server.url, backoff=0.02, max_backoff=0.4, retry_budget=10)
    assert [r["id"] for r in client.caption(PAIRS)] == ["t1", "t2"]
    gaps = server.gaps()
    assert len(server.times) > 6
    assert gaps[3] > gaps[0] * 2  # exponential: 0.02, 0.04, 0.08, 0.16 (x 0.5-1 jitter)
    assert max(gaps) < 0.4 + 0.2  # capped at max_backoff
    assert len({round(g, 3) for g in gaps}) > 2  # jittered, not a fixed rhythm


def test_retry_after_is_a_floor_not_the_whole_wait(busy):
    server = busy(0.9, retry_after="0.3")
    CCExpertClient(server.url, backoff=0.001, max_backoff=5, retry_budget=10).caption(PAIRS)
    assert min(server.gaps()) >= 0.29  # never sooner than the server asked, though the backoff says 1 ms


def test_retry_budget_spent_gives_up_with_the_reason(busy):
    server = busy(60)
    client = CCExpertClient(server.url, backoff=0.02, max_backoff=0.1, retry_budget=0.8)
    start = time.monotonic()
    with pytest.raises(ServiceError, match=r"HTTP 429 overloaded: busy \(retry budget of 0.8 s spent\)") as info:
        client.caption(PAIRS)
    assert info.value.status == 429
    assert 0.5 < time.monotonic() - start < 2.0 and len(server.times) > 4
    # a Retry-After beyond the budget is not waited for
    server = busy(60, retry_after="30")
    start = time.monotonic()
    with pytest.raises(ServiceError, match="retry budget of 0.8 s"):
        CCExpertClient(server.url, backoff=0.01, retry_budget=0.8).caption(PAIRS)
    assert time.monotonic() - start < 1.0 and len(server.times) == 1


def test_default_budget_is_minutes_and_retries_is_optional():
    client = CCExpertClient("http://127.0.0.1:1")
    assert client.retry_budget == 300.0 and client.retries is None


def test_check_key_ok_refused_or_not_available(busy):
    ok = busy(0, check=(200, {"status": "ok", "label": "analyst"}))
    assert CCExpertClient(ok.url, api_key="k").check_key() == {"status": "ok", "label": "analyst"}
    older = busy(0)
    assert CCExpertClient(older.url, api_key="k").check_key() is None  # 404: the server predates the endpoint
    refused = busy(0, check=(401, {"error": {"code": "unauthorized", "message": "wrong API key", "id": None}}))
    with pytest.raises(ServiceError, match="401 unauthorized: wrong API key") as info:
        CCExpertClient(refused.url, api_key="bad").check_key()
    assert info.value.status == 401


def test_a_failing_model_is_not_retried_for_the_whole_budget(scripted):
    """500 engine_error is not load: a few retries, not five minutes of them."""
    server = scripted([err(500, "engine_error")] * 10)
    start = time.monotonic()
    with pytest.raises(ServiceError, match=r"failed after 3 attempts: HTTP 500 engine_error.*kept failing"):
        CCExpertClient(server.url, backoff=0.01).caption(PAIRS)
    assert len(server.bodies) == 3 and time.monotonic() - start < 2


def test_each_wait_for_a_retry_is_told_with_the_attempt_to_come_and_the_budget_left(scripted):
    """Issue 25 finding 11: the progress line says "waiting for the backend: attempt N, next try in ..."."""
    from ccexpert_changes.core.retry import waiting_text

    server = scripted([err(503, "not_ready"), err(503, "not_ready")])
    client = CCExpertClient(server.url, backoff=0.01, retry_budget=60)
    told = []
    client.on_retry = told.append
    assert [r["id"] for r in client.caption(PAIRS)] == ["t1", "t2"]
    assert [w.attempt for w in told] == [2, 3]
    assert all(0 < w.next_try_s <= 0.02 and 59 < w.give_up_in_s <= 60 for w in told)
    assert waiting_text(told[0]).startswith("waiting for the backend: attempt 2, next try in 0 s, giving up in 1 min")
