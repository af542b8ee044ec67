"""Issue 24's service findings, each as a hostile client or an operator met it: a small body that exhausts memory,
shutdown with requests in flight, over-quota keys costing a body read, endless header lines, client disconnects
counted as 500, unthrottled key guessing and short keys, a port in use, a key file left by the Ray ingress.

Servers are real: ``run_service`` (what ``ccexpert serve`` runs) in a process where signals, exit codes, the HTTP
parser or the process's memory are the subject; uvicorn in a thread otherwise. No sleeps that race: conditions are
polled with deadlines, and the in-flight requests are held by a slow engine until the test is done with them.
"""

from __future__ import annotations

import concurrent.futures
import signal
import socket
import tempfile
import time
from pathlib import Path

import pytest
import requests
from ccexpert.cli import main
from ccexpert.service import Settings, create_app
from ccexpert.service.auth import AuthThrottle, key_line
from service_helpers import (
    EchoEngine,
    b64,
    echo_service_process,
    free_port,
    metric_value,
    png_bytes,
    solid,
    stop_process,
    thread_server,
    wait_ready,
)

CHIP = 32
KEY = "reliability-key-0123456789"


def pair_body(pair_id: str = "p", value: int = 1) -> dict:
    return {
        "pairs": [
            {"id": pair_id, "before": b64(png_bytes(solid(value, CHIP))), "after": b64(png_bytes(solid(2, CHIP)))}
        ]
    }


def wait_for(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(0.05)


def metric(url: str, sample: str) -> float:
    try:
        return metric_value(requests.get(url + "/metrics", timeout=5).text, sample)
    except KeyError:
        return 0.0


def rss_peak_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def keys_file(tmp: Path) -> Path:
    path = tmp / "keys.txt"
    path.write_text(key_line(KEY, "tester") + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


# -- 1. memory: the pair cap comes before anything is built per element -------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset the RSS peak")
def test_two_megabyte_array_body_is_refused_within_a_second_and_50_mib(tmp_path):
    port = free_port()
    process = echo_service_process(port, {"max_batch": 16}, {"chip_size": CHIP}, log_path=tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=60, process=process)
        body = b'{"pairs": [' + b",".join([b"0"] * 1_000_000) + b"]}"
        assert len(body) > 1_900_000
        requests.post(url + "/v1/captions", json=pair_body(), timeout=30)  # warm: pools, buffers, imports
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        before, _ = rss_peak_kib(process.pid)
        t0 = time.monotonic()
        response = requests.post(
            url + "/v1/captions", data=body, headers={"Content-Type": "application/json"}, timeout=60
        )
        elapsed = time.monotonic() - t0
        _, peak = rss_peak_kib(process.pid)
    finally:
        stop_process(process)
    assert response.status_code == 422 and response.json()["error"]["code"] == "batch_too_large", response.text[:300]
    assert elapsed < 1.0, f"answered after {elapsed:.2f} s"
    assert (peak - before) / 1024 < 50, f"server grew {(peak - before) / 1024:.0f} MiB for a {len(body)} byte body"


def test_value_count_cap_keeps_real_bodies_and_their_own_errors():
    from ccexpert.service.errors import ApiError
    from ccexpert.service.protocol import check_batch, parse_json

    good = {"pairs": [{"id": f"p{i}", "before": "AAAA", "after": "AAAA"} for i in range(4)], "max_new_tokens": 8}
    import json

    assert parse_json(json.dumps(good).encode(), 4).ids == ["p0", "p1", "p2", "p3"]
    # commas inside strings do not count: this is a bad chip (400), not a big batch
    many_commas = {"pairs": [{"id": "p", "before": "," * 10_000, "after": "AAAA"}]}
    with pytest.raises(ApiError) as caught:
        parse_json(json.dumps(many_commas).encode(), 4)
    assert caught.value.code == "bad_base64"
    # one pair over the cap passes the cheap bound and is named as such by the batch check
    five = parse_json(json.dumps({"pairs": good["pairs"] + [good["pairs"][0] | {"id": "p9"}]}).encode(), 4)
    with pytest.raises(ApiError) as caught:
        check_batch(five.ids, 4)
    assert caught.value.code == "batch_too_large"
    for flood in (b'{"pairs": [' + b"{}," * 5000 + b"{}]}", b'{"pairs": [], "x": [' + b'"ab",' * 5000 + b'"ab"]}'):
        with pytest.raises(ApiError) as caught:
            parse_json(flood, 4)
        assert (caught.value.status, caught.value.code) == (422, "batch_too_large")


# -- 5. shutdown: requests in flight get 503 + Retry-After in the envelope, and serve exits 0 ----------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_answers_requests_in_flight_503_and_exits_0(tmp_path, sig):
    port = free_port()
    settings = {"shutdown_grace_s": 1.5, "max_batch": 1, "device_batch": 1, "max_wait_ms": 0}
    process = echo_service_process(
        port, settings, {"chip_size": CHIP, "delay_per_pair": 4.0}, log_path=tmp_path / "server.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=60, process=process)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            sent = [
                pool.submit(requests.post, url + "/v1/captions", json=pair_body(f"p{i}", 10 + i), timeout=60)
                for i in range(4)
            ]
            wait_for(lambda: metric(url, "ccexpert_inflight_requests") == 4, what="4 requests in flight")
            process.send_signal(sig)
            answers = [f.result() for f in sent]
        code = process.wait(30)
    finally:
        stop_process(process)
    assert code == 0, (tmp_path / "server.log").read_text()[-2000:]
    # the engine runs one pair at a time, 4 s each: the first may finish, the others cannot within 1.5 s
    refused = [r for r in answers if r.status_code != 200]
    assert len(refused) >= 3
    for response in refused:
        assert response.status_code == 503, response.text[:200]
        assert response.json()["error"]["code"] == "shutting_down"
        assert int(response.headers["Retry-After"]) > 0


# -- 7. a key over its quota is refused before its body is read ------------------------------------------------------


def test_over_quota_key_is_refused_before_its_body_is_sent(tmp_path):
    settings = Settings(
        api_keys_file=keys_file(tmp_path), max_concurrency=8, max_concurrency_per_key=1, max_wait_ms=0, max_batch=2
    )
    engine = EchoEngine(chip_size=CHIP, delay_per_pair=3.0)
    headers = {"Authorization": f"Bearer {KEY}"}
    with thread_server(create_app(settings, engine)) as url, concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(requests.post, url + "/v1/captions", json=pair_body(), headers=headers, timeout=30)
        wait_for(lambda: metric(url, "ccexpert_inflight_requests") == 1, what="the first request in flight")
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: 4000000\r\n\r\n"
            )  # and not a byte of the 4 MB body
            answer = sock.recv(65536)
        assert held.result().status_code == 200
    assert answer.startswith(b"HTTP/1.1 429"), answer[:200]
    assert b'"overloaded"' in answer and b"retry-after: 1" in answer.lower()


# -- 8. (the catalogue holds the 5,000-digit integer) ------------------------------------------------------------------
# -- 9. the header block is capped while it is read -------------------------------------------------------------------


def test_endless_header_line_is_cut_off(tmp_path):
    port = free_port()
    process = echo_service_process(port, {}, {"chip_size": CHIP}, log_path=tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=60, process=process)
        _, before = rss_peak_kib(process.pid)
        sent = 0
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
            try:
                while sent < 32 * 1024 * 1024:
                    sock.sendall(b"a" * 65536)
                    sent += 65536
            except OSError:  # the server closed the connection: what this test wants
                pass
            try:
                answer = sock.recv(65536)
            except (TimeoutError, OSError) as exc:
                answer = repr(exc).encode()
        _, after = rss_peak_kib(process.pid)
        assert requests.get(url + "/healthz", timeout=5).status_code == 200
    finally:
        stop_process(process)
    assert sent < 32 * 1024 * 1024, "the server read 32 MiB of one header line"
    assert answer.startswith(b"HTTP/1.1 400") or answer == b"", answer[:200]
    assert (after - before) / 1024 < 20


# -- 11. a client that disconnects is counted as 499, not 500 ---------------------------------------------------------


def test_client_disconnect_is_counted_499_not_500():
    settings = Settings(max_wait_ms=0)
    with thread_server(create_app(settings, EchoEngine(chip_size=CHIP))) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"pairs": ['
            )
        sample = 'ccexpert_requests_total{route="/v1/captions",status="499"}'
        wait_for(lambda: metric(url, sample) == 1, what="the 499 counted")
        assert metric(url, 'ccexpert_requests_total{route="/v1/captions",status="500"}') == 0


# -- 12. guessing keys is throttled per address; short keys are refused ------------------------------------------------


def test_auth_throttle_refills_at_its_rate():
    now = [100.0]
    throttle = AuthThrottle(burst=3, per_s=0.5, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == pytest.approx(2.0)
    assert throttle.retry_after("10.0.0.2") == 0  # per address
    now[0] += 1.0
    assert throttle.retry_after("10.0.0.1") == pytest.approx(1.0)
    now[0] += 1.0
    assert throttle.retry_after("10.0.0.1") == 0
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == pytest.approx(2.0)  # one try per refill, no new burst


def test_auth_throttle_forgets_addresses_beyond_its_bound():
    throttle = AuthThrottle(burst=2, per_s=1.0, clock=lambda: 0.0, max_clients=100)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle.buckets) <= 100


def test_wrong_keys_are_throttled_per_address_with_retry_after(tmp_path):
    settings = Settings(api_keys_file=keys_file(tmp_path), auth_failures_burst=3, auth_failures_per_s=0.1)
    with thread_server(create_app(settings, EchoEngine(chip_size=CHIP))) as url:
        check = url + "/v1/auth/check"
        wrong = [requests.get(check, headers={"Authorization": f"Bearer guess-{i}"}, timeout=5) for i in range(4)]
        right = requests.get(check, headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert [r.status_code for r in wrong] == [401, 401, 401, 429]
    for response in (wrong[3], right):  # while throttled, the right key is refused too: guessing learns nothing
        assert response.status_code == 429 and response.json()["error"]["code"] == "auth_throttled"
        assert 1 <= int(response.headers["Retry-After"]) <= 10


def test_hash_key_refuses_keys_shorter_than_16_characters(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("short-key\n"))
    assert main(["serve", "--hash-key"]) == 2
    err = capsys.readouterr().err
    assert "at least 16 characters" in err and err.count("\n") == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("x" * 16 + "\n"))
    assert main(["serve", "--hash-key"]) == 0
    assert capsys.readouterr().out.startswith("sha256:")


# -- 13. a port in use is exit 2 with one line; no key file left by the Ray ingress ----------------------------------


def test_port_in_use_exits_2_with_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err, err


def test_ray_ingress_leaves_no_key_file(tmp_path):
    pytest.importorskip("ray.serve")
    from ccexpert.ray_deployments import IngressService

    keys_text = key_line(KEY, "tester") + "\n"
    listing = set(Path(tempfile.gettempdir()).glob("ccexpert-keys-*"))
    ingress = IngressService(object(), Settings().model_dump(mode="json"), keys_text)
    assert set(Path(tempfile.gettempdir()).glob("ccexpert-keys-*")) == listing
    assert ingress.service_app.state.keys.identify(KEY) == "tester"
