"""The HTTP service on a real uvicorn server on 127.0.0.1: endpoints, bad input, overload, concurrency.

Most tests use a pixel-echo engine (captions computed from the pixels received, so any mix-up shows);
``test_tiny_model_*`` run the real ``ccexpert serve`` process with the tiny CCExpert checkpoint.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from ccexpert.service import Settings, create_app
from PIL import Image
from service_helpers import (
    EchoEngine,
    LogRecords,
    b64,
    echo_caption,
    free_port,
    metric_value,
    png_bytes,
    raw_png,
    serve_process,
    solid,
    stop_process,
    thread_server,
    thread_server_no_wait,
    wait_ready,
)

CHIP = 64
LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def echo():
    engine = EchoEngine(chip_size=CHIP, delay_per_pair=0.002)
    settings = Settings(max_batch=8, device_batch=8, max_wait_ms=5, max_body_bytes=LIMIT, max_concurrency=64)
    with thread_server(create_app(settings, engine)) as url:
        yield url, engine


def body(*pairs, **extra):
    return {"pairs": [{"id": i, "before": b64(b), "after": b64(a)} for i, b, a in pairs], **extra}


def good_pair(pair_id="p1", b=10, a=20):
    return pair_id, png_bytes(solid(b, CHIP)), png_bytes(solid(a, CHIP))


def test_health_ready_info_metrics_openapi(echo):
    url, _ = echo
    assert requests.get(url + "/healthz").json() == {"status": "alive"}
    assert requests.get(url + "/readyz").json() == {"status": "ready"}
    info = requests.get(url + "/v1/info").json()
    assert info == {
        "api_version": "1",
        "model_name": "echo",
        "model_version": "1",
        "chip_size": CHIP,
        "bands": 3,
        "max_batch": 8,
        "max_body_bytes": LIMIT,
        "device": "cpu",
        "dtype": "float32",
        "demo": True,
        "family": "ccexpert",
        "change_expert": True,
        "max_in_flight": 2,
        "gsd_m": None,
        "uses_context": False,
    }
    requests.post(url + "/v1/captions", json=body(good_pair()))
    requests.post(url + "/v1/captions", json=body())
    metrics = requests.get(url + "/metrics").text
    assert 'ccexpert_requests_total{route="/v1/captions",status="200"}' in metrics
    assert 'ccexpert_errors_total{code="empty_batch"}' in metrics
    assert "ccexpert_request_seconds_bucket" in metrics and "ccexpert_batch_size_bucket" in metrics
    assert 'ccexpert_pairs_total{status="ok"}' in metrics and "ccexpert_ready 1.0" in metrics
    spec = requests.get(url + "/openapi.json").json()
    post = spec["paths"]["/v1/captions"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "PairIn" in spec["components"]["schemas"] and "CaptionResponse" in spec["components"]["schemas"]
    assert {"401", "413", "422", "429"} <= set(post["responses"])


def test_json_and_multipart_give_the_same_results_in_request_order(echo):
    url, _ = echo
    pairs = [good_pair("z", 30, 40), good_pair("a", 50, 50), good_pair("m", 1, 2)]
    r = requests.post(url + "/v1/captions", json=body(*pairs, max_new_tokens=8))
    assert r.status_code == 200
    data = r.json()
    assert data["model"] == "echo"
    assert [x["id"] for x in data["results"]] == ["z", "a", "m"]
    assert [x["caption"] for x in data["results"]] == [echo_caption(30, 40), echo_caption(50, 50), echo_caption(1, 2)]
    assert [x["changed"] for x in data["results"]] == [True, False, True]
    assert all(x["status"] == "ok" and x["error"] is None and x["timing_ms"] >= 0 for x in data["results"])
    files = []
    for pair_id, b, a in pairs:
        files += [("id", (None, pair_id)), ("before", ("b.png", b, "image/png")), ("after", ("a.png", a, "image/png"))]
    multi = requests.post(url + "/v1/captions", files=files, data={"max_new_tokens": "8"}).json()
    assert [(x["id"], x["caption"]) for x in multi["results"]] == [(x["id"], x["caption"]) for x in data["results"]]


def _truncated() -> bytes:
    data = png_bytes(np.random.default_rng(0).integers(0, 256, (CHIP, CHIP, 3), dtype=np.uint8))
    return data[: len(data) // 2]


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(solid(5, CHIP)).save(buffer, format="JPEG")
    return buffer.getvalue()


BAD_BODIES = {
    "not_png": (lambda: body(("p", _jpeg(), png_bytes(solid(1, CHIP)))), 400, "not_png", "not a PNG"),
    "truncated": (lambda: body(("p", _truncated(), png_bytes(solid(1, CHIP)))), 400, "truncated_png", "truncated"),
    "wrong_size": (
        lambda: body(("p", png_bytes(solid(1, 32)), png_bytes(solid(1, 32)))),
        400,
        "wrong_size",
        f"expected {CHIP}x{CHIP}, got 32x32",
    ),
    "sizes_differ": (
        lambda: body(("p", png_bytes(solid(1, CHIP)), png_bytes(solid(1, 32)))),
        400,
        "size_mismatch",
        "before is 64x64 but after is 32x32",
    ),
    "rgba": (
        lambda: body(("p", png_bytes(np.zeros((CHIP, CHIP, 4), np.uint8)), png_bytes(solid(1, CHIP)))),
        400,
        "wrong_bands",
        "expected 3 bands",
    ),
    "gray": (
        lambda: body(("p", png_bytes(solid(1, CHIP)), png_bytes(np.zeros((CHIP, CHIP), np.uint8)))),
        400,
        "wrong_bands",
        "after image: expected 3 bands (8-bit RGB), got 1",
    ),
    "bad_base64": (lambda: {"pairs": [{"id": "p", "before": "***", "after": "***"}]}, 400, "bad_base64", "base64"),
    "empty": (lambda: body(), 422, "empty_batch", "pairs is empty"),
    "over_limit": (
        lambda: body(*[good_pair(f"p{i}") for i in range(9)]),
        422,
        "batch_too_large",
        "9 pairs is over max_batch 8",
    ),
    "duplicate": (lambda: body(good_pair("same"), good_pair("same")), 422, "duplicate_id", "'same'"),
    "unknown_top": (lambda: body(good_pair(), colour="red"), 422, "invalid_request", "colour: Extra inputs"),
    "unknown_pair": (
        lambda: {"pairs": [{**body(good_pair())["pairs"][0], "mask": "x"}]},
        422,
        "invalid_request",
        "pairs.0.mask",
    ),
    "missing_after": (lambda: {"pairs": [{"id": "p", "before": "AAAA"}]}, 422, "invalid_request", "pairs.0.after"),
    "bad_id": (lambda: body(good_pair("has space")), 422, "invalid_request", "pairs.0.id"),
    "zero_tokens": (lambda: body(good_pair(), max_new_tokens=0), 422, "invalid_request", "max_new_tokens"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_json_input_is_a_4xx_naming_the_problem_and_server_keeps_serving(echo, case):
    url, _ = echo
    make, status, code, words = BAD_BODIES[case]
    r = requests.post(url + "/v1/captions", json=make())
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and words in error["message"], error
    if status == 400:
        assert error["id"] == "p"
    ok = requests.post(url + "/v1/captions", json=body(good_pair("after_bad", 3, 4)))
    assert ok.status_code == 200 and ok.json()["results"][0]["caption"] == echo_caption(3, 4)


def test_max_new_tokens_is_capped_at_the_server_setting():
    class Recording(EchoEngine):
        def caption(self, pairs, max_new_tokens=64):
            self.last_tokens = max_new_tokens
            return super().caption(pairs, max_new_tokens)

    engine = Recording(chip_size=CHIP)
    with thread_server(create_app(Settings(max_new_tokens=20), engine)) as url:
        assert requests.post(url + "/v1/captions", json=body(good_pair(), max_new_tokens=64)).status_code == 200
        assert engine.last_tokens == 20
        assert requests.post(url + "/v1/captions", json=body(good_pair("b"), max_new_tokens=5)).status_code == 200
        assert engine.last_tokens == 5


def test_body_over_limit_is_413_with_and_without_content_length(echo):
    url, _ = echo
    big = b'{"pairs": [' + b" " * (LIMIT + 10) + b"]}"
    r = requests.post(url + "/v1/captions", data=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    chunks = (b" " * 65536 for _ in range(LIMIT // 65536 + 2))  # chunked upload: no Content-Length
    r = requests.post(url + "/v1/captions", data=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert requests.post(url + "/v1/captions", json=body(good_pair())).status_code == 200


def test_other_bad_requests(echo):
    url, _ = echo
    r = requests.post(url + "/v1/captions", data=b"{not json", headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_json")
    r = requests.post(url + "/v1/captions", data=b"x", headers={"content-type": "text/plain"})
    assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_media_type")
    _, b, a = good_pair()
    form = [("id", (None, "p")), ("before", ("b.png", b)), ("extra", (None, "1"))]
    r = requests.post(url + "/v1/captions", files=form)
    assert r.status_code == 422 and "unknown form field(s): extra" in r.json()["error"]["message"]
    r = requests.post(url + "/v1/captions", files=[("id", (None, "p")), ("before", ("b.png", b))])
    assert r.status_code == 422 and "1 id, 1 before and 0 after" in r.json()["error"]["message"]
    r = requests.get(url + "/v2/nothing")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")


def test_overload_is_429_with_retry_after():
    engine = EchoEngine(chip_size=CHIP, delay_per_pair=0.5)
    settings = Settings(max_batch=8, max_concurrency=1, max_wait_ms=0)
    with thread_server(create_app(settings, engine)) as url:
        slow = threading.Thread(target=requests.post, args=(url + "/v1/captions",), kwargs={"json": body(good_pair())})
        slow.start()
        time.sleep(0.2)
        r = requests.post(url + "/v1/captions", json=body(good_pair("q")))
        slow.join()
        assert r.status_code == 429 and r.json()["error"]["code"] == "overloaded"
        assert int(r.headers["Retry-After"]) >= 1
        assert requests.post(url + "/v1/captions", json=body(good_pair("r"))).status_code == 200


def test_20_concurrent_clients_x_20_requests_nothing_lost_duplicated_or_mixed(echo):
    url, engine = echo
    seen_before = engine.pairs_seen

    def client(c: int) -> list[tuple[str, str, str]]:
        session = requests.Session()
        out = []
        for r in range(20):
            idx = c * 20 + r
            pairs = []
            for k in range(2):  # two pairs per request, distinct content everywhere
                b, a = (2 * idx + k) % 251, (7 * (2 * idx + k)) % 253
                pairs.append((f"c{c:02d}_r{r:02d}_p{k}", png_bytes(solid(b, CHIP)), png_bytes(solid(a, CHIP))))
            response = session.post(url + "/v1/captions", json=body(*pairs), timeout=60)
            assert response.status_code == 200, response.text
            results = response.json()["results"]
            assert [x["id"] for x in results] == [p[0] for p in pairs]
            for (pair_id, _, _), result, k in zip(pairs, results, range(2), strict=True):
                b, a = (2 * idx + k) % 251, (7 * (2 * idx + k)) % 253
                out.append((pair_id, result["caption"], echo_caption(b, a)))
        return out

    with ThreadPoolExecutor(20) as pool:
        answers = [row for rows in pool.map(client, range(20)) for row in rows]
    assert len(answers) == 800
    assert len({pair_id for pair_id, _, _ in answers}) == 800  # none lost or duplicated
    mixed = [(i, got, want) for i, got, want in answers if got != want]
    assert not mixed, mixed[:3]
    assert engine.pairs_seen - seen_before == 800  # each pair computed exactly once
    assert max(engine.batches) > 2  # concurrent requests were merged into device batches


def test_resent_batch_is_answered_from_cache(echo):
    url, engine = echo
    pairs = [good_pair("again1", 100, 101), good_pair("again2", 102, 103)]
    first = requests.post(url + "/v1/captions", json=body(*pairs)).json()
    computed = engine.pairs_seen
    second = requests.post(url + "/v1/captions", json=body(*pairs)).json()
    assert [x["caption"] for x in second["results"]] == [x["caption"] for x in first["results"]]
    assert engine.pairs_seen == computed
    changed = [("again1", png_bytes(solid(7, CHIP)), png_bytes(solid(8, CHIP)))]  # same id, new content: computed
    assert requests.post(url + "/v1/captions", json=body(*changed)).json()["results"][0]["caption"] == echo_caption(
        7, 8
    )


def test_engine_failure_is_a_json_500_and_server_keeps_serving():
    engine = EchoEngine(chip_size=CHIP, fail_on=66)
    with thread_server(create_app(Settings(), engine)) as url:
        r = requests.post(url + "/v1/captions", json=body(good_pair("bad", 66, 1)))
        assert r.status_code == 500 and r.json()["error"]["code"] == "engine_error"
        assert "before mean 66" in r.json()["error"]["message"]
        assert requests.post(url + "/v1/captions", json=body(good_pair("ok", 65, 1))).status_code == 200


def test_not_ready_while_loading_then_model_failed(monkeypatch):
    import ccexpert.engine

    def slow_failing_load(model, device, dtype, max_batch):
        time.sleep(1.0)
        raise FileNotFoundError(f"no model at {model}")

    monkeypatch.setattr(ccexpert.engine.CaptionEngine, "from_pretrained", staticmethod(slow_failing_load))
    with thread_server_no_wait(create_app(Settings(model="/nowhere/model"))) as url:
        r = requests.get(url + "/readyz")
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready" and r.headers["Retry-After"]
        assert requests.get(url + "/v1/info").status_code == 503
        r = requests.post(url + "/v1/captions", json=body(good_pair()))
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        assert requests.get(url + "/healthz").status_code == 200  # alive while not ready
        deadline = time.monotonic() + 30
        while requests.get(url + "/readyz").json()["error"]["code"] != "model_failed":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert "no model at /nowhere/model" in requests.get(url + "/readyz").json()["error"]["message"]


def test_tiny_model_server_process(tiny_model_dir, tmp_path):
    """The real `ccexpert serve` with the tiny checkpoint: every endpoint, captions equal to the in-process
    engine's, and concurrent clients get their own results."""
    from ccexpert.engine import CaptionEngine

    port = free_port()
    process = serve_process(
        port,
        "--model",
        str(tiny_model_dir),
        "--max-new-tokens",
        "12",
        "--max-batch",
        "4",
        log_path=tmp_path / "serve.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert requests.get(url + "/healthz", timeout=30).status_code == 200 if _alive(url, process) else False
        wait_ready(url, 120, process)
        info = requests.get(url + "/v1/info").json()
        assert info["model_name"] == "ccexpert-tiny-random" and info["chip_size"] == 384 and info["max_batch"] == 4
        rng = np.random.default_rng(3)
        images = [
            (rng.integers(0, 256, (384, 384, 3), dtype=np.uint8), rng.integers(0, 256, (384, 384, 3), dtype=np.uint8))
            for _ in range(4)
        ]
        engine = CaptionEngine.from_pretrained(tiny_model_dir, device="cpu")
        expected = [r.caption for r in engine.caption(images, max_new_tokens=12)]
        encoded = [(png_bytes(b), png_bytes(a)) for b, a in images]

        def client(c: int) -> list[tuple[int, str]]:
            out = []
            for r in range(2):
                k = (c + r) % 4
                reply = requests.post(url + "/v1/captions", json=body((f"c{c}_r{r}", *encoded[k])), timeout=120)
                assert reply.status_code == 200, reply.text
                out.append((k, reply.json()["results"][0]["caption"]))
            return out

        with ThreadPoolExecutor(4) as pool:
            answers = [row for rows in pool.map(client, range(4)) for row in rows]
        assert len(answers) == 8
        assert all(caption == expected[k] for k, caption in answers), (answers, expected)
        bad = requests.post(url + "/v1/captions", json=body(("x", png_bytes(solid(1, 100)), png_bytes(solid(1, 100)))))
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "wrong_size"
        metrics = requests.get(url + "/metrics").text
        assert 'ccexpert_pairs_total{status="ok"} 8.0' in metrics
    finally:
        stop_process(process)


def _alive(url: str, process, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(url + "/healthz", timeout=1)
            return True
        except requests.RequestException:
            time.sleep(0.1)
    return False


def _distinct_pairs(engine, count: int, tokens: int, min_gap: float = 1e-4):
    """``count`` small-PNG 384 px pairs (flat colour + a rectangle) whose in-process confidences, each pair
    captioned alone, differ pairwise by more than ``min_gap`` (relative), so a returned confidence names its pair."""
    rng = np.random.default_rng(11)
    chosen: list[tuple[np.ndarray, np.ndarray]] = []
    results = []
    for _ in range(8 * count):
        pair = []
        for _side in range(2):
            image = np.empty((384, 384, 3), np.uint8)
            image[:] = rng.integers(0, 256, 3)
            y, x = rng.integers(0, 300, 2)
            image[y : y + 80, x : x + 80] = rng.integers(0, 256, 3)
            pair.append(image)
        result = engine.caption([tuple(pair)], max_new_tokens=tokens)[0]  # alone: a device batch of one
        if all(abs(result.confidence - r.confidence) > min_gap * r.confidence for r in results):
            chosen.append(tuple(pair))
            results.append(result)
            if len(chosen) == count:
                return chosen, results
    raise AssertionError(f"found only {len(chosen)} pairs with distinct confidences")


def test_tiny_model_server_20_clients_x_20_requests_nothing_lost_duplicated_or_mixed(tiny_model_dir, tmp_path):
    """Issue 5 on the real model: 20 concurrent clients x 20 one-pair requests to ``ccexpert serve`` with the tiny
    checkpoint. Ids are distinct (every pair is computed: no cache hits), contents come from 8 pairs whose
    confidences differ, so each answer is checked against the in-process engine's answer for the pair its id was
    built from. Pairs of concurrent clients share device batches; the answer must not depend on that."""
    from ccexpert.engine import CaptionEngine

    clients, per_client, tokens, kinds = 20, 20, 2, 8
    port = free_port()
    process = serve_process(
        port,
        "--model",
        str(tiny_model_dir),
        "--device",
        "cpu",
        "--max-new-tokens",
        "2",
        "--device-batch",
        "8",
        "--max-wait-ms",
        "20",
        log_path=tmp_path / "serve.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        engine = CaptionEngine.from_pretrained(tiny_model_dir, device="cpu")  # loads while the server does
        pairs, expected = _distinct_pairs(engine, kinds, tokens)
        confidences = [r.confidence for r in expected]
        assert len(set(confidences)) == kinds, confidences
        encoded = [(b64(png_bytes(b)), b64(png_bytes(a))) for b, a in pairs]
        wait_ready(url, 120, process)

        def client(c: int) -> list[tuple[str, int, dict]]:
            session = requests.Session()  # one connection per client: batches are shared round-robin
            out = []
            for r in range(per_client):
                k = (3 * c + r) % kinds
                pair_id = f"c{c:02d}_r{r:02d}_k{k}"
                before, after = encoded[k]
                reply = session.post(
                    url + "/v1/captions",
                    timeout=300,
                    json={"pairs": [{"id": pair_id, "before": before, "after": after}], "max_new_tokens": tokens},
                )
                assert reply.status_code == 200, reply.text
                results = reply.json()["results"]
                assert len(results) == 1 and results[0]["status"] == "ok", results
                out.append((pair_id, k, results[0]))
            return out

        with ThreadPoolExecutor(clients) as pool:
            answers = [row for rows in pool.map(client, range(clients)) for row in rows]

        sent = [f"c{c:02d}_r{r:02d}_k{(3 * c + r) % kinds}" for c in range(clients) for r in range(per_client)]
        returned = [result["id"] for _, _, result in answers]
        assert sorted(returned) == sorted(sent) and len(set(returned)) == clients * per_client  # none lost/doubled
        assert all(pair_id == result["id"] for pair_id, _, result in answers)

        def nearest(confidence: float) -> int:
            return min(range(kinds), key=lambda i: abs(confidences[i] - confidence))

        mixed = [
            (pair_id, k, nearest(res["confidence"]), res["caption"])
            for pair_id, k, res in answers
            if nearest(res["confidence"]) != k or res["caption"] != expected[k].caption
        ]
        assert not mixed, f"{len(mixed)} answers belong to another pair: {mixed[:5]}"

        metrics = requests.get(url + "/metrics", timeout=30).text
        assert metric_value(metrics, 'ccexpert_pairs_total{status="ok"}') == clients * per_client
        assert (
            metric_value(metrics, 'ccexpert_requests_total{route="/v1/captions",status="200"}') == clients * per_client
        )
        assert metric_value(metrics, "ccexpert_batch_size_sum") == clients * per_client  # each computed once
        batches = metric_value(metrics, "ccexpert_batch_size_count")
        alone = metric_value(metrics, 'ccexpert_batch_size_bucket{le="1.0"}')
        assert batches < clients * per_client, "no device batch held more than one pair"

        # the same answer as the pair captioned alone in-process, whatever device batch it shared on the server:
        # identical caption and flag; the confidence may differ in the last float32 digits (~5e-7 relative), because
        # the CPU matmul of the last-position logits takes a path that depends on the batch's row count
        differ = [
            (pair_id, res, expected[k])
            for pair_id, k, res in answers
            if res["caption"] != expected[k].caption
            or res["changed"] != expected[k].changed
            or res["confidence"] != pytest.approx(expected[k].confidence, rel=1e-5)
        ]
        assert not differ, (
            f"{len(differ)}/{len(answers)} answers differ from their pair captioned alone ({batches:.0f} device "
            f"batches, {alone:.0f} of one pair): {differ[:3]}"
        )
    finally:
        stop_process(process)


def test_settings_layers_flags_over_env_over_toml(tmp_path):
    from ccexpert.service.settings import load_settings

    toml = tmp_path / "serve.toml"
    toml.write_text('[serve]\nport = 9000\nmax_batch = 4\nhost = "127.0.0.1"\nmax_wait_ms = 2.5\n')
    env = {"CCEXPERT_MAX_BATCH": "6", "CCEXPERT_DEVICE": "cpu"}
    settings = load_settings(toml, {"port": 9100, "model": None}, environ=env)
    assert (settings.port, settings.max_batch, settings.device, settings.max_wait_ms) == (9100, 6, "cpu", 2.5)
    assert settings.model is None and settings.is_loopback
    toml.write_text("max_batchh = 3\n")
    with pytest.raises(ValueError, match="max_batchh: Extra inputs are not permitted"):
        load_settings(toml, environ={})
    with pytest.raises(ValueError, match="max_batch: Input should be greater than or equal to 1"):
        load_settings(None, environ={"CCEXPERT_MAX_BATCH": "0"})
    toml.write_text("port = \n")
    with pytest.raises(ValueError, match="config file"):
        load_settings(toml, environ={})


# -- issue 16: client mistakes are 4xx, the API contract ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (
            lambda: body(("p", raw_png(100_000, 100_000, sample=None), raw_png(100_000, 100_000, sample=None))),
            "wrong_size",
        ),
        (lambda: body(("p", raw_png(2**31 - 1, 1, sample=None), raw_png(2**31 - 1, 1, sample=None))), "wrong_size"),
        (lambda: body(("p", raw_png(CHIP, CHIP, 16, 2, sample=40000), png_bytes(solid(1, CHIP)))), "wrong_mode"),
        (lambda: body(("p", png_bytes(solid(1, CHIP)), raw_png(CHIP, CHIP, 16, 0, sample=40000))), "wrong_mode"),
    ],
)
def test_bombs_and_16_bit_pngs_are_400_without_traceback(echo, make, code):
    url, _ = echo
    with LogRecords() as logs:
        r = requests.post(url + "/v1/captions", json=make())
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["id"] == "p", error
    assert "Error" not in error["message"], error  # no exception names
    assert not logs.tracebacks(), [r.getMessage() for r in logs.tracebacks()]


def test_deeply_nested_json_is_400_invalid_json_without_traceback(echo):
    url, _ = echo
    deep = b'{"pairs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with LogRecords() as logs:
        r = requests.post(url + "/v1/captions", data=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json", r.text
    assert "Error" not in r.json()["error"]["message"]
    assert not logs.tracebacks()


def test_405_carries_allow(echo):
    url, _ = echo
    r = requests.get(url + "/v1/captions")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["Allow"] == "POST"
    r = requests.delete(url + "/v1/info")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def test_openapi_bounds_pairs_by_max_batch(echo):
    url, _ = echo
    spec = requests.get(url + "/openapi.json").json()
    pairs = spec["components"]["schemas"]["CaptionRequest"]["properties"]["pairs"]
    assert (pairs["minItems"], pairs["maxItems"]) == (1, 8)
    form = spec["paths"]["/v1/captions"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert (form["properties"]["id"]["minItems"], form["properties"]["id"]["maxItems"]) == (1, 8)


@pytest.mark.parametrize("tokens", ["8", True, 8.5, 0, 513, 10**30])
def test_max_new_tokens_is_a_strict_int_in_json(echo, tokens):
    url, _ = echo
    r = requests.post(url + "/v1/captions", json=body(good_pair(), max_new_tokens=tokens))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", (tokens, r.text)
    assert "max_new_tokens" in r.json()["error"]["message"]


@pytest.mark.parametrize("tokens", ["0", "513", str(10**30), "8.0", "+8", " 8", "8_0", "abc", ""])
def test_multipart_max_new_tokens_has_the_json_bounds(echo, tokens):
    url, _ = echo
    _, b, a = good_pair()
    form = [("id", (None, "p")), ("before", ("b.png", b)), ("after", ("a.png", a)), ("max_new_tokens", (None, tokens))]
    r = requests.post(url + "/v1/captions", files=form)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", (tokens, r.text)
    assert "max_new_tokens" in r.json()["error"]["message"]
    form[-1] = ("max_new_tokens", (None, "512"))  # the JSON bound: accepted, capped at the server's setting
    assert requests.post(url + "/v1/captions", files=form).status_code == 200


def test_oversized_authorization_header_is_431(echo):
    url, _ = echo
    r = requests.post(url + "/v1/captions", json=body(good_pair()), headers={"Authorization": "Bearer " + "k" * 9000})
    assert r.status_code == 431 and r.json()["error"]["code"] == "header_too_large", r.text
    assert requests.post(url + "/v1/captions", json=body(good_pair())).status_code == 200


def test_docs_page_is_self_contained(echo):
    url, _ = echo
    r = requests.get(url + "/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<script src" not in page and "cdn" not in page.lower() and "http://" not in page and "https://" not in page
    for words in (
        "POST /v1/captions",
        "GET /v1/info",
        "GET /v1/auth/check",
        "max_new_tokens",
        "multipart/form-data",
        "wrong_mode",
        "body_timeout",
        "overloaded",
        "/openapi.json",
    ):
        assert words in page, words
    assert requests.get(url + "/openapi.json").status_code == 200


def test_caption_requests_are_logged_with_label_pairs_and_status(echo, caplog):
    import logging

    url, _ = echo
    with caplog.at_level(logging.INFO, logger="ccexpert.service.access"):
        assert requests.post(url + "/v1/captions", json=body(good_pair("l1"), good_pair("l2"))).status_code == 200
        assert requests.post(url + "/v1/captions", json=body()).status_code == 422
    lines = [r.getMessage() for r in caplog.records if r.name == "ccexpert.service.access"]
    assert any("key=-" in m and "pairs=2" in m and "status=200" in m for m in lines), lines
    assert any("pairs=0" in m and "status=422" in m and "code=empty_batch" in m for m in lines), lines


def test_request_timeout_is_503_and_the_resend_is_answered_from_the_cache():
    engine = EchoEngine(chip_size=CHIP, delay_per_pair=0.8)
    with thread_server(create_app(Settings(request_timeout_s=0.3, max_wait_ms=0), engine)) as url:
        r = requests.post(url + "/v1/captions", json=body(good_pair("slow", 12, 13)))
        assert r.status_code == 503 and r.json()["error"]["code"] == "timeout", r.text
        assert r.headers["Retry-After"] and "resend" in r.json()["error"]["message"]
        time.sleep(1.0)  # the pair finished into the cache meanwhile
        seen = engine.pairs_seen
        r = requests.post(url + "/v1/captions", json=body(good_pair("slow", 12, 13)))
        assert r.status_code == 200 and r.json()["results"][0]["caption"] == echo_caption(12, 13)
        assert engine.pairs_seen == seen


def test_serve_flags_for_the_new_settings():
    import argparse

    from ccexpert.commands import serve

    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            "serve",
            "--metrics-require-key",
            "--body-timeout-s",
            "5",
            "--request-timeout-s",
            "60",
            "--max-concurrency-per-key",
            "3",
        ]
    )
    assert (args.metrics_require_key, args.body_timeout_s, args.request_timeout_s, args.max_concurrency_per_key) == (
        True,
        5.0,
        60.0,
        3,
    )
    assert parser.parse_args(["serve", "--no-metrics-require-key"]).metrics_require_key is False
    assert parser.parse_args(["serve"]).metrics_require_key is None
    assert Settings(max_concurrency=32).per_key_limit == 8 and Settings(max_concurrency=2).per_key_limit == 1
    assert Settings(max_concurrency=4, max_concurrency_per_key=10).per_key_limit == 4
