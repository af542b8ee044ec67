"""Slow and idle clients cannot lock the others out (issue 16, finding 2).

Raw sockets on 127.0.0.1 open caption requests that send their headers and a byte of body and then go idle, or
trickle one byte at a time; while they stay open, well-behaved clients must still be answered within a bound.
The body read has a deadline (408 ``body_timeout``, connection closed), the in-flight slot is taken only once the
whole body is in, and one key cannot hold more than ``max_concurrency_per_key`` slots. Every loop is bounded and
every socket is closed at the end.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests
from ccexpert.service import Settings, create_app
from ccexpert.service.auth import key_line
from service_helpers import EchoEngine, b64, png_bytes, solid, thread_server

CHIP = 32
HEADERS_TEMPLATE = (
    "POST /v1/captions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Content-Length: {length}\r\n{extra}\r\n"
)


def _body(pair_id: str, value: int = 1) -> dict:
    return {
        "pairs": [
            {
                "id": pair_id,
                "before": b64(png_bytes(solid(value, CHIP))),
                "after": b64(png_bytes(solid(value + 1, CHIP))),
            }
        ]
    }


def _open_slow(
    url: str, count: int, first: bytes = b"{", length: int = 100_000, extra: str = ""
) -> list[socket.socket]:
    """``count`` connections that sent the headers of a ``length``-byte body and its first bytes, then stop."""
    parts = urlsplit(url)
    socks = []
    try:
        for _ in range(count):
            s = socket.create_connection((parts.hostname, parts.port), timeout=10)
            s.sendall(HEADERS_TEMPLATE.format(length=length, extra=extra).encode() + first)
            socks.append(s)
    except BaseException:
        _close(socks)
        raise
    return socks


def _close(socks: list[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


def _read_response(s: socket.socket, timeout: float) -> tuple[int, dict, bytes, bool]:
    """(status, headers, body, closed by the server) of the one response on ``s``, within ``timeout`` s."""
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    closed = False
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            closed = True
            break
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])
            headers = {k.lower(): v for k, v in headers.items()}
            if len(rest) >= int(headers.get("content-length", 0)) and headers.get("connection") != "close":
                break
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if ": " in line)}
    return status, headers, rest, closed


def _trickle(socks: list[socket.socket], stop: threading.Event, interval: float, limit_s: float) -> None:
    """One byte per socket every ``interval`` s until ``stop`` or ``limit_s`` s (bounded)."""
    deadline = time.monotonic() + limit_s
    while not stop.is_set() and time.monotonic() < deadline:
        for s in socks:
            with contextlib.suppress(OSError):
                s.sendall(b" ")
        stop.wait(interval)


def test_idle_and_trickling_connections_do_not_lock_others_out():
    settings = Settings(max_concurrency=4, body_timeout_s=4, max_wait_ms=1)
    with thread_server(create_app(settings, EchoEngine(chip_size=CHIP))) as url:
        idle = _open_slow(url, 12)  # 3 x max_concurrency idle
        trickling = _open_slow(url, 6)
        stop = threading.Event()
        trickler = threading.Thread(target=_trickle, args=(trickling, stop, 0.25, 10), daemon=True)
        trickler.start()
        try:
            time.sleep(0.5)  # the slow requests are all inside the app now
            t0 = time.monotonic()
            session = requests.Session()
            for i in range(5):
                r = session.post(url + "/v1/captions", json=_body(f"seq{i}", i), timeout=5)
                assert r.status_code == 200, r.text
            with ThreadPoolExecutor(4) as pool:
                codes = list(
                    pool.map(
                        lambda i: (
                            requests.post(url + "/v1/captions", json=_body(f"par{i}", 50 + i), timeout=5).status_code
                        ),
                        range(4),
                    )
                )
            assert codes == [200] * 4
            assert time.monotonic() - t0 < 3.0, "legitimate requests were held up by slow clients"

            # past the body deadline the slow requests are answered 408 and their connections closed, trickle or not
            for s in idle[:3] + trickling[:3]:
                status, headers, rest, closed = _read_response(s, timeout=8)
                assert status == 408, (status, rest)
                assert json.loads(rest)["error"]["code"] == "body_timeout"
                assert headers.get("connection") == "close"
            assert requests.post(url + "/v1/captions", json=_body("after"), timeout=5).status_code == 200
        finally:
            stop.set()
            trickler.join(5)
            _close(idle + trickling)


def test_body_deadline_is_for_the_whole_body_not_each_read():
    with thread_server(create_app(Settings(body_timeout_s=1.5), EchoEngine(chip_size=CHIP))) as url:
        socks = _open_slow(url, 1)
        stop = threading.Event()
        trickler = threading.Thread(target=_trickle, args=(socks, stop, 0.1, 6), daemon=True)
        trickler.start()
        try:
            t0 = time.monotonic()
            status, _, rest, _ = _read_response(socks[0], timeout=6)
            assert status == 408 and json.loads(rest)["error"]["code"] == "body_timeout"
            assert 1.2 < time.monotonic() - t0 < 4.0
        finally:
            stop.set()
            trickler.join(5)
            _close(socks)


def test_one_key_cannot_hold_every_slot(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{key_line('alice-key', 'alice')}\n{key_line('bob-key', 'bob')}\n")
    keys.chmod(0o600)
    engine = EchoEngine(chip_size=CHIP, delay_per_pair=0.6)
    settings = Settings(
        api_keys_file=keys,
        max_concurrency=4,
        max_concurrency_per_key=2,
        max_wait_ms=0,
        device_batch=1,
        key_slot_wait_s=0,  # over the key's limit: 429 at once (the wait is tested in test_service_reliability.py)
    )
    with thread_server(create_app(settings, engine)) as url:

        def post(who: str, i: int) -> requests.Response:
            return requests.post(
                url + "/v1/captions",
                json=_body(f"{who}{i}", 10 + i),
                timeout=30,
                headers={"Authorization": f"Bearer {who}-key"},
            )

        with ThreadPoolExecutor(6) as pool:
            alice = [pool.submit(post, "alice", i) for i in range(4)]
            time.sleep(0.3)
            bob = pool.submit(post, "bob", 0)
            alice_codes = sorted(f.result().status_code for f in alice)
            assert bob.result().status_code == 200
        assert alice_codes == [200, 200, 429, 429]
        refused = [f.result() for f in alice if f.result().status_code == 429][0]
        assert refused.json()["error"]["code"] == "overloaded" and "alice" in refused.json()["error"]["message"]
        assert int(refused.headers["Retry-After"]) >= 1


def test_slow_clients_with_keys_do_not_lock_out_other_keys(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{key_line('alice-key', 'alice')}\n{key_line('bob-key', 'bob')}\n")
    keys.chmod(0o600)
    settings = Settings(api_keys_file=keys, max_concurrency=4, body_timeout_s=5, max_wait_ms=1)
    with thread_server(create_app(settings, EchoEngine(chip_size=CHIP))) as url:
        socks = _open_slow(url, 10, extra="Authorization: Bearer alice-key\r\n")
        unauthenticated = _open_slow(url, 10)
        try:
            time.sleep(0.3)
            for i in range(3):
                r = requests.post(
                    url + "/v1/captions",
                    json=_body(f"bob{i}", i),
                    timeout=5,
                    headers={"Authorization": "Bearer bob-key"},
                )
                assert r.status_code == 200, r.text
            status, _, rest, _ = _read_response(unauthenticated[0], timeout=5)  # answered at once, body unread
            assert status == 401
        finally:
            _close(socks + unauthenticated)


def test_memory_budget_of_bodies_being_read():
    """Bodies being read count against max_concurrency x max_body_bytes; a request over it is 429 at once."""
    settings = Settings(max_concurrency=1, max_body_bytes=1024 * 1024, body_timeout_s=5)
    with thread_server(create_app(settings, EchoEngine(chip_size=CHIP))) as url:
        socks = _open_slow(url, 1, first=b"{" + b" " * 900_000, length=1_000_000)
        try:
            time.sleep(0.5)
            assert requests.post(url + "/v1/captions", json=_body("small"), timeout=5).status_code == 200
            big = json.dumps(_body("big")).replace('"pairs"', '"pairs"' + " " * 300_000, 1)
            r = requests.post(url + "/v1/captions", data=big, timeout=5, headers={"content-type": "application/json"})
            assert r.status_code == 429 and r.json()["error"]["code"] == "overloaded", r.text
            assert r.headers["Retry-After"]
        finally:
            _close(socks)
        time.sleep(0.3)
        r = requests.post(url + "/v1/captions", data=big, timeout=5, headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
