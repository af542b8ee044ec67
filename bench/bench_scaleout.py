"""Scale-out: ``ccexpert serve`` vs the Ray Serve app (1 and 2 model replicas) on the same pairs and model, one run.

Each configuration gets the same two phases from threads in this process, over HTTP on 127.0.0.1:
- sequential: one client, ``--sequential`` requests of 1 pair: p50 latency (the Ray app's overhead per request is the
  difference to ``ccexpert serve``'s: proxy actor -> ingress replica -> model replica, objects through Ray);
- load: ``--clients`` keyless clients, each ``--requests`` requests of ``--pairs`` pairs (fresh ids, distinct chips):
  pairs/s over the wall time, p50/p95 request latency.
- one analyst: ``ccexpert describe`` of a generated scene (``--scene`` px, 0.5 m) through the run loop, batches of
  ``--describe-batch`` pairs, with one request at a time vs the ``max_in_flight`` the backend advertises (two per
  replica): what a single user gains from the replicas without any setting (a fresh grid origin per run, so the
  server's idempotency cache never answers);
Configurations: ``serve`` (``python -m ccexpert.cli serve --model M`` as a subprocess), ``ray1`` and ``ray2`` (the
Ray app with 1 and 2 model replicas, ``batching="serve"``, the default: each pair of the service's batch is its own
call, spread over the replicas and merged by ``@serve.batch`` in each), and ``ray2-ingress-batch`` (2 replicas,
``batching="ingress"``: the service's batch goes whole to one replica), to choose the batching. Ray runs locally
with ``--ray-cpus`` CPUs (dashboard off).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_scaleout.py            # tiny random model (built in a temp dir)
    .venv/bin/python bench/bench_scaleout.py --model ckpt/ --json
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if requests.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


def make_chips(count: int, size: int = 384) -> list[tuple[str, str]]:
    out = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        before = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        after = before.copy()
        after[seed % 200 : seed % 200 + 120, 60:180] = (250, 240, 30)
        pngs = []
        for image in (before, after):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
            pngs.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
        out.append((pngs[0], pngs[1]))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(url: str, chips: list[tuple[str, str]], args: argparse.Namespace, tag: str) -> dict:
    """The two phases against one server; every answer's ids are checked."""
    tokens = args.max_new_tokens

    def post(session: requests.Session, ids: list[str], chip_index: list[int]) -> float:
        payload = {
            "pairs": [
                {"id": i, "before": chips[c][0], "after": chips[c][1]} for i, c in zip(ids, chip_index, strict=True)
            ],
            "max_new_tokens": tokens,
        }
        t0 = time.perf_counter()
        r = session.post(url + "/v1/captions", json=payload, timeout=300)
        elapsed = time.perf_counter() - t0
        if r.status_code != 200 or [x["id"] for x in r.json()["results"]] != ids:
            raise RuntimeError(f"{tag}: bad answer {r.status_code} {r.text[:200]}")
        return elapsed

    session = requests.Session()
    post(session, [f"{tag}-warm"], [0])
    sequential = [post(session, [f"{tag}-seq{i}"], [i % len(chips)]) for i in range(args.sequential)]

    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def client(k: int) -> None:
        s = requests.Session()
        for r in range(args.requests):
            ids = [f"{tag}-c{k}-r{r}-p{j}" for j in range(args.pairs)]
            index = [(k * args.requests * args.pairs + r * args.pairs + j) % len(chips) for j in range(args.pairs)]
            try:
                elapsed = post(s, ids, index)
            except Exception as exc:  # counted, reported
                with lock:
                    errors.append(str(exc))
                continue
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    pairs = len(latencies) * args.pairs
    return {
        "seq_p50_ms": round(statistics.median(sequential) * 1000, 1),
        "pairs_per_s": round(pairs / wall, 2),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1) if latencies else None,
        "pairs": pairs,
        "errors": len(errors),
    }


def one_analyst(url: str, args: argparse.Namespace, tag: str) -> dict:
    """``describe`` (in this process, through HTTP) with ``in_flight`` 1 and then the backend's default."""
    import rasterio
    from ccexpert.client import CCExpertClient
    from ccexpert.describe import DescribeOptions, ServiceCaptioner, describe
    from rasterio.transform import from_origin

    def write_tif(path: Path, seed: int, transform) -> Path:
        pixels = np.random.default_rng(seed).integers(0, 256, (3, args.scene, args.scene), dtype=np.uint8)
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=args.scene,
            height=args.scene,
            count=3,
            dtype="uint8",
            crs="EPSG:32631",
            transform=transform,
        ) as dst:
            dst.write(pixels)
        return path

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, (key, in_flight) in enumerate((("one_at_a_time", 1), ("advertised", None))):
            transform = from_origin(500_000.0 + 10_000 * n + 1_000 * len(tag), 4_000_000.0, 0.5, 0.5)
            before = write_tif(Path(tmp) / f"{key}_b.tif", 0, transform)
            after = write_tif(Path(tmp) / f"{key}_a.tif", 1, transform)
            captioner = ServiceCaptioner(CCExpertClient(url))
            options = DescribeOptions(
                str(before),
                str(after),
                str(Path(tmp) / f"{key}.gpkg"),
                batch_size=args.describe_batch,
                in_flight=in_flight,
                max_new_tokens=args.max_new_tokens,
                progress=False,
            )
            t0 = time.perf_counter()
            summary = describe(options, captioner)
            wall = time.perf_counter() - t0
            if summary.failed or summary.counts["ok"] != summary.total:
                raise RuntimeError(f"{tag} one analyst: {summary}")
            out[f"{key}_pairs_per_s"] = round(summary.total / wall, 2)
            if in_flight is None:
                out["in_flight"] = captioner.max_in_flight(captioner.client.info())
    out["speedup"] = round(out["advertised_pairs_per_s"] / out["one_at_a_time_pairs_per_s"], 2)
    return out


def run_serve(model: str, chips, args) -> dict:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ccexpert.cli",
            "serve",
            "--model",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--max-new-tokens",
            str(args.max_new_tokens),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, 180, proc)
        return {**measure(url, chips, args, "serve"), "analyst": one_analyst(url, args, "serve")}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run_ray(model: str, chips, args) -> dict[str, dict]:
    import ray
    from ccexpert.ray_serve import APP_NAME, build_app, start
    from ccexpert.service.settings import Settings
    from ray import serve

    port = free_port()
    settings = Settings(model=model, port=port, max_new_tokens=args.max_new_tokens)
    url = f"http://127.0.0.1:{port}"
    results: dict[str, dict] = {}
    start(settings, num_cpus=args.ray_cpus, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        for tag, replicas, batching in (
            ("ray1", 1, "serve"),
            ("ray2", 2, "serve"),
            ("ray2-ingress-batch", 2, "ingress"),
        ):
            serve.run(
                build_app(settings, replicas=replicas, batching=batching),
                name=APP_NAME,
                route_prefix="/",
                blocking=False,
            )
            wait_ready(url, 180)
            results[tag] = measure(url, chips, args, tag)
            if batching == "serve":
                results[tag]["analyst"] = one_analyst(url, args, tag)
            serve.delete(APP_NAME)
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="checkpoint folder (default: the tiny random model, built in a temp dir)")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--requests", type=int, default=6, help="requests per client in the load phase")
    p.add_argument("--pairs", type=int, default=2, help="pairs per request in the load phase")
    p.add_argument("--sequential", type=int, default=10, help="1-pair requests in the sequential phase")
    p.add_argument("--max-new-tokens", type=int, default=6)
    p.add_argument("--ray-cpus", type=int, default=3, help="CPUs of the local Ray (ingress 1 + 1 per replica)")
    p.add_argument("--scene", type=int, default=1536, help="one-analyst scene size in px (1536: 16 chips)")
    p.add_argument("--describe-batch", type=int, default=2, help="pairs per describe request")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    logging.getLogger("ray").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from ccexpert.presets import save_tiny_model

            model = str(save_tiny_model(Path(tmp) / "tiny", seed=0))
        chips = make_chips(16)
        results = {"serve": run_serve(model, chips, args), **run_ray(model, chips, args)}

    base, r1, r2, r2i = results["serve"], results["ray1"], results["ray2"], results["ray2-ingress-batch"]
    summary = {
        "ray_overhead_ms_per_request": round(r1["seq_p50_ms"] - base["seq_p50_ms"], 1),
        "ray1_vs_serve_throughput": round(r1["pairs_per_s"] / base["pairs_per_s"], 2),
        "ray2_vs_ray1_speedup": round(r2["pairs_per_s"] / r1["pairs_per_s"], 2),
        "ray2_vs_serve_throughput": round(r2["pairs_per_s"] / base["pairs_per_s"], 2),
        "serve_batch_vs_ingress_batch": round(r2["pairs_per_s"] / r2i["pairs_per_s"], 2),
        "one_analyst_in_flight_speedup_serve": base["analyst"]["speedup"],
        "one_analyst_in_flight_speedup_ray2": r2["analyst"]["speedup"],
        "one_analyst_ray2_in_flight": r2["analyst"]["in_flight"],
        "cpu_count": os.cpu_count(),
        "note": (
            "on a 2-core machine two CPU replicas share the cores with the ingress, the proxy, the Ray "
            "controller and these client threads, and one replica's batch already uses more than one core "
            "for decoding plus PNG/JSON work; the 2-replica speed-up is therefore well under 2x here. On one GPU "
            "per replica (or one machine per replica) each replica has its own device and the speed-up "
            "approaches the replica count while the ingress keeps up."
        ),
        "setup": {
            k: getattr(args, k)
            for k in ("model", "clients", "requests", "pairs", "sequential", "max_new_tokens", "ray_cpus")
        },
    }
    if args.json:
        print(json.dumps({"results": results, "summary": summary}))
        return 0
    cols = ["serve", "ray1", "ray2", "ray2-ingress-batch"]
    print(f"{'':18}" + "".join(f"{c:>20}" for c in cols))
    for key in ("seq_p50_ms", "pairs_per_s", "p50_ms", "p95_ms", "pairs", "errors"):
        print(f"{key:18}" + "".join(f"{results[c][key]!s:>20}" for c in cols))
    for key in ("one_at_a_time_pairs_per_s", "advertised_pairs_per_s", "in_flight", "speedup"):
        print(f"{key[:18]:18}" + "".join(f"{results[c].get('analyst', {}).get(key, '-')!s:>20}" for c in cols))
    print()
    for key, value in summary.items():
        if key not in ("note", "setup"):
            print(f"{key}: {value}")
    print("note:", summary["note"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
