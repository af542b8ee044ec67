"""The Ray Serve application (``ccexpert.ray_serve``): same API and answers as ``ccexpert serve``, keys, a killed
replica during a ``describe --backend`` run, and the bad-input catalogue.

One local Ray instance (3 CPUs, no dashboard) for the module and Serve's HTTP proxy on a free 127.0.0.1 port.
Deployed apps: the tiny model on 2 replicas, then the catalogue's pixel-echo engine (``service_helpers.EchoEngine``,
made inside the replica from its import path: a replica is another process). The file runs in about 2 minutes on
2 cores; every test is bounded (pytest-timeout) and Ray/Serve are shut down in the fixture's finally.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

from ccexpert.gpkg_output import read_tiles  # noqa: E402
from ccexpert.ray_serve import APP_NAME, INGRESS_DEPLOYMENT, MODEL_DEPLOYMENT, build_app  # noqa: E402
from ccexpert.service import Settings, create_app  # noqa: E402
from ccexpert.service.auth import key_line  # noqa: E402
from PIL import Image  # noqa: E402
from service_helpers import REPO, free_port, thread_server, wait_ready  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TOKENS = 6
CLIENT_KEYS = [f"client-key-{i}" for i in range(8)]
TESTS_DIR = Path(__file__).resolve().parent


def png_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def chips(seed: int, size: int = 384) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    before = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    after = before.copy()
    after[100:200, 100:200] = (250, 240, 30)
    return png_b64(before), png_b64(after)


CHIPS = [chips(seed) for seed in range(4)]


def body(ids: list[str], chip_of: list[int]) -> dict:
    return {
        "pairs": [{"id": i, "before": CHIPS[c][0], "after": CHIPS[c][1]} for i, c in zip(ids, chip_of, strict=True)],
        "max_new_tokens": TOKENS,
    }


@pytest.fixture(scope="module")
def cluster():
    """Local Ray (3 CPUs; tests/backend on the workers' path for the echo engine) and Serve's proxy; yields the
    port. Everything is shut down afterwards, whatever happened."""
    port = free_port()
    pythonpath = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=3,
        include_dashboard=False,
        logging_level="warning",
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1"}},
    )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield port
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


def keys_file(tmp: Path, keys: list[str]) -> Path:
    path = tmp / "keys.txt"
    path.write_text("".join(key_line(k, f"client{i}") + "\n" for i, k in enumerate(keys)), encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def tiny_settings(tiny_model_dir, tmp_path_factory) -> Settings:
    return Settings(
        model=str(tiny_model_dir),
        max_new_tokens=TOKENS,
        max_wait_ms=5,
        api_keys_file=keys_file(tmp_path_factory.mktemp("keys"), CLIENT_KEYS),
    )


@pytest.fixture(scope="module")
def tiny_app(cluster, tiny_settings) -> str:
    """The tiny model on 2 replicas behind the service app; yields the URL."""
    serve.run(build_app(tiny_settings, replicas=2), name=APP_NAME, route_prefix="/", blocking=False)
    url = f"http://127.0.0.1:{cluster}"
    wait_ready(url, timeout=90)
    return url


@pytest.fixture(scope="module")
def reference(tiny_settings) -> str:
    """``ccexpert serve``'s app in-process (same settings, same model) on a thread server; yields its URL."""
    with thread_server(create_app(tiny_settings)) as url:
        yield url


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def replica_pids(n: int, timeout: float = 30.0) -> set[int]:
    """The PIDs of the model replicas, as each reports them (concurrent calls spread over the replicas)."""
    handle = serve.get_deployment_handle(MODEL_DEPLOYMENT, APP_NAME)
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < n and time.monotonic() < deadline:
        pids |= {r.result(timeout_s=30) for r in [handle.pid.remote() for _ in range(8)]}
    assert len(pids) == n, f"found replica PIDs {pids}, expected {n}"
    return pids


# -- same API, same answers ------------------------------------------------------------------------------------------


def test_same_captions_ids_and_fields_as_ccexpert_serve(tiny_app, reference):
    ids, chip_of = ["r00000_c00000_a", "r00000_c00001_b", "x-3", "x-4"], [0, 1, 2, 3]
    key = auth(CLIENT_KEYS[0])
    ray_answer = requests.post(tiny_app + "/v1/captions", json=body(ids, chip_of), headers=key, timeout=60)
    ref_answer = requests.post(reference + "/v1/captions", json=body(ids, chip_of), headers=key, timeout=60)
    assert ray_answer.status_code == ref_answer.status_code == 200, ray_answer.text
    got, want = ray_answer.json(), ref_answer.json()
    assert got["model"] == want["model"] == "ccexpert-tiny-random"
    assert [r["id"] for r in got["results"]] == ids
    for g, w in zip(got["results"], want["results"], strict=True):
        assert set(g) == set(w)
        assert (g["id"], g["caption"], g["changed"], g["status"], g["error"]) == (
            w["id"],
            w["caption"],
            w["changed"],
            w["status"],
            w["error"],
        )
        assert g["confidence"] == pytest.approx(w["confidence"], abs=1e-5)
    info, ref_info = (requests.get(u + "/v1/info", timeout=10).json() for u in (tiny_app, reference))
    # the capacity clients default to: two requests per model replica (describe and the plugin keep that many)
    assert (info.pop("max_in_flight"), ref_info.pop("max_in_flight")) == (4, 2)
    assert info == ref_info
    for path in ("/openapi.json",):  # the same schema: the same code builds it
        assert requests.get(tiny_app + path, timeout=10).json() == requests.get(reference + path, timeout=10).json()
    metrics = requests.get(tiny_app + "/metrics", timeout=10).text
    assert 'ccexpert_pairs_total{status="ok"}' in metrics and "ccexpert_ready 1.0" in metrics


def test_eight_keyed_clients_each_get_their_own_ids_and_wrong_key_is_401(tiny_app, reference):
    want = {
        c: r["caption"]
        for c, r in enumerate(
            requests.post(
                reference + "/v1/captions",
                json=body([f"c{c}" for c in range(4)], list(range(4))),
                headers=auth(CLIENT_KEYS[0]),
                timeout=60,
            ).json()["results"]
        )
    }

    def client(k: int) -> list[str]:
        problems, session = [], requests.Session()
        for round_ in range(3):
            ids = [f"k{k}-r{round_}-p{j}" for j in range(3)]
            chip_of = [(k + round_ + j) % 4 for j in range(3)]
            r = session.post(
                tiny_app + "/v1/captions", json=body(ids, chip_of), headers=auth(CLIENT_KEYS[k]), timeout=120
            )
            if r.status_code != 200:
                problems.append(f"client {k}: {r.status_code} {r.text[:200]}")
                continue
            results = r.json()["results"]
            if [x["id"] for x in results] != ids:
                problems.append(f"client {k}: ids {[x['id'] for x in results]} != {ids}")
            problems += [
                f"client {k}: {x['id']} got {x['caption']!r}, its chips give {want[c]!r}"
                for x, c in zip(results, chip_of, strict=True)
                if x["caption"] != want[c]
            ]
        return problems

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        problems = [p for result in pool.map(client, range(8)) for p in result]
    assert problems == []
    wrong = requests.post(tiny_app + "/v1/captions", json=body(["a"], [0]), headers=auth("not-a-key"), timeout=30)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    assert wrong.headers.get("WWW-Authenticate") == "Bearer"
    missing = requests.post(tiny_app + "/v1/captions", json=body(["a"], [0]), timeout=30)
    assert missing.status_code == 401
    assert requests.get(tiny_app + "/v1/auth/check", headers=auth(CLIENT_KEYS[3]), timeout=10).json() == {
        "status": "ok",
        "label": "client3",
    }


def test_replicas_killed_during_describe_every_tile_once_no_error(tiny_app, tiny_model_dir, tmp_path):
    """Both model replicas are SIGKILLed while ``ccexpert describe --backend`` runs (so a batch is surely in
    flight): it is resent once Serve has replaced them, and the run ends with 9 tiles, each ok once, with the
    captions the model gives in-process (no wrong, missing or duplicated tile)."""
    from test_describe import scene

    before, after = scene(tmp_path, size=1152)
    out = tmp_path / "o.gpkg"
    key_path = tmp_path / "key.txt"
    key_path.write_text(CLIENT_KEYS[5], encoding="utf-8")
    key_path.chmod(0o600)
    pids = replica_pids(2)
    ingress = serve.get_deployment_handle(INGRESS_DEPLOYMENT, APP_NAME)
    resent_before = ingress.resent_batches.remote().result(timeout_s=30)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ccexpert.cli",
            "describe",
            str(before),
            str(after),
            "-o",
            str(out),
            "--backend",
            tiny_app,
            "--api-key-file",
            str(key_path),
            "--batch-size",
            "1",
            "--max-new-tokens",
            str(TOKENS),
            "-q",
        ],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _count(out) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        if proc.poll() is not None:
            pytest.fail(
                f"describe ended before the replicas could be killed: {proc.returncode} {proc.communicate()[1][-2000:]}"
            )
        assert 2 <= _count(out) < 9, "describe finished before the replicas could be killed"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, stderr[-2000:]
    assert "9 chips: 9 captioned" in stdout
    tiles, _ = read_tiles(out)
    assert len(tiles) == 9 and len({t["tile_id"] for t in tiles}) == 9
    assert {t["status"] for t in tiles} == {"ok"}
    # the right result for every tile: the captions `ccexpert describe` gives with the model in-process
    from ccexpert.cli import main

    local = tmp_path / "local.gpkg"
    assert (
        main(
            [
                "describe",
                str(before),
                str(after),
                "-o",
                str(local),
                "--model",
                str(tiny_model_dir),
                "--max-new-tokens",
                str(TOKENS),
                "-q",
            ]
        )
        == 0
    )
    want = {t["tile_id"]: (t["caption"], t["changed"]) for t in read_tiles(local)[0]}
    assert {t["tile_id"]: (t["caption"], t["changed"]) for t in tiles} == want
    # the batch in flight on a killed replica was resent: by Serve's router (Ray >= 2.5x reroutes a request whose
    # replica died) or, when the router gives up, by ReplicaEngine (counted here); either way no error reached describe
    assert ingress.resent_batches.remote().result(timeout_s=30) >= resent_before
    assert replica_pids(2).isdisjoint(pids)  # Serve replaced both


def _count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        tiles, _ = read_tiles(path)
    except Exception:  # being written
        return 0
    return sum(t["status"] == "ok" for t in tiles)


# -- the bad-input catalogue against the Ray app ----------------------------------------------------------------------

try:
    import test_bad_inputs as catalogue_module

    CASES = list(catalogue_module.CASES)
except (ImportError, AttributeError):  # pragma: no cover - the catalogue's engineer has not landed it yet
    catalogue_module, CASES = None, []


@pytest.fixture(scope="module")
def catalogue_app(cluster, tmp_path_factory) -> str:
    """The catalogue's server (pixel-echo engine, its settings and key) as a Ray app; replaces the tiny app."""
    keys = tmp_path_factory.mktemp("catalogue") / "keys.txt"
    keys.write_text(key_line(catalogue_module.KEY, "catalogue") + "\n", encoding="utf-8")
    keys.chmod(0o600)
    settings = catalogue_module.catalogue_settings(keys)
    app = build_app(
        settings,
        replicas=1,
        engine_factory="service_helpers:EchoEngine",
        engine_kwargs={"chip_size": catalogue_module.CHIP},
    )
    serve.delete(APP_NAME)  # else /readyz answers from the tiny app while this one deploys
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    url = f"http://127.0.0.1:{cluster}"
    wait_ready(url, timeout=90)
    return url


@pytest.mark.skipif(not CASES, reason="tests/backend/test_bad_inputs.py has no CASES yet")
def test_bad_input_catalogue_same_4xx_as_ccexpert_serve(catalogue_app):
    """Every case of the catalogue: the status and code `ccexpert serve` gives (one test: the catalogue's own file
    runs each case separately against the plain service)."""
    session = requests.Session()
    failures = {}
    for case in CASES:
        try:
            problems = catalogue_module.check(case, catalogue_module.send(catalogue_app, case, session, timeout=60))
        except requests.RequestException as exc:
            problems = [f"no answer: {exc}"]
        if problems:
            failures[case.id] = problems
    assert failures == {}, f"{len(failures)} of {len(CASES)} cases differ: {failures}"


def test_two_caption_lengths_in_one_replica_batch_go_back_to_their_own_calls(cluster):
    """Issue 30: calls of different ``max_new_tokens`` merged by one ``@serve.batch`` each get their own result
    (the caption names the pixels and the length it was made with)."""
    from ccexpert.ray_deployments import CaptionModel

    model = CaptionModel.options(name="GroupingModel", max_ongoing_requests=16).bind(
        device_batch=8,
        max_wait_ms=2000,  # long enough that the calls below land in one batch
        engine_factory="service_helpers:TokenEchoEngine",
        engine_kwargs={"chip_size": 32},
    )
    handle = serve.run(model, name="grouping", route_prefix="/grouping", blocking=False)
    try:
        calls = [(10, 11, 5), (20, 21, 9), (30, 31, 5), (40, 41, 9)]  # (before, after, max_new_tokens)
        pending = [
            handle.caption_one.remote((np.full((32, 32, 3), b, np.uint8), np.full((32, 32, 3), a, np.uint8)), tokens)
            for b, a, tokens in calls
        ]
        captions = [r.result(timeout_s=60).caption for r in pending]
        merged = handle.merged_sizes.remote().result(timeout_s=30)
    finally:
        serve.delete("grouping")
    assert captions == [f"before {b} after {a} tokens {t}" for b, a, t in calls]
    assert max(merged) >= 2, f"the calls were never merged into one batch: {merged}"


def test_context_notes_in_one_replica_batch_each_reach_their_own_calls(cluster):
    """Issue 27 item 7: calls with different notes merged by one ``@serve.batch`` are captioned with their own note
    (one engine call per note), and a call without a note reaches the engine without one."""
    from ccexpert.ray_deployments import CaptionModel

    model = CaptionModel.options(name="NoteModel", max_ongoing_requests=16).bind(
        device_batch=8,
        max_wait_ms=2000,  # long enough that the calls below land in one batch
        engine_factory="service_helpers:NoteEngine",
        engine_kwargs={"chip_size": 32},
    )
    handle = serve.run(model, name="notes", route_prefix="/notes", blocking=False)
    try:
        calls = [(10, 11, "after the flood"), (20, 21, None), (30, 31, "after the fire"), (40, 41, "after the flood")]
        pending = [
            handle.caption_one.remote((np.full((32, 32, 3), b, np.uint8), np.full((32, 32, 3), a, np.uint8)), 8, note)
            for b, a, note in calls
        ]
        captions = [r.result(timeout_s=60).caption for r in pending]
        merged = handle.merged_sizes.remote().result(timeout_s=30)
    finally:
        serve.delete("notes")
    assert captions == [f"before {b} after {a} | {note}" for b, a, note in calls]
    assert max(merged) >= 2, f"the calls were never merged into one batch: {merged}"
