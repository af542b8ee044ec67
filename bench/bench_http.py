"""Pairs/s through the HTTP service vs the in-process engine, on the same pairs, side by side in one run.

The service runs as a real ``ccexpert serve`` process on 127.0.0.1 (same checkpoint, same device batch).
Two HTTP figures: "service" sends chips the client PNG-encoded before the clock starts (as a separate client
machine would: the service's own cost is base64 + JSON + PNG decoding + queueing + batching + the reply), and
"end to end" encodes inside the timed loop on this same machine (client CPU competes with the server's).
Rounds alternate (engine, HTTP, ...) and the best round of each is compared, so load from other processes on
a shared machine hits both sides alike. Goal on CPU with the tiny model: service overhead <= 15%.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_http.py                      # tiny model, CPU
    .venv/bin/python bench/bench_http.py --model path/to/checkpoint --device cuda --pairs 256 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pairs(n: int, size: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        before = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        after = before.copy()
        y, x = rng.integers(0, size // 2, 2)
        after[y : y + size // 3, x : x + size // 3] = rng.integers(0, 256, 3, dtype=np.uint8)
        pairs.append((before, after))
    return pairs


def run_engine(engine, pairs, max_new_tokens: int) -> float:
    t0 = time.perf_counter()
    results = engine.caption(pairs, max_new_tokens=max_new_tokens)
    elapsed = time.perf_counter() - t0
    assert len(results) == len(pairs)
    return len(pairs) / elapsed


def run_http(url: str, pairs, request_size: int, clients: int, max_new_tokens: int, tag: str) -> float:
    """``pairs`` are arrays (encoded in the timed loop) or PNG bytes (encoded before)."""
    from ccexpert.client import CCExpertClient, ChipPair

    chunks = [list(range(i, min(i + request_size, len(pairs)))) for i in range(0, len(pairs), request_size)]

    def send(chunk_ids: list[int]) -> int:
        client = CCExpertClient(url, read_timeout=600)
        items = [ChipPair(f"{tag}_{i}", *pairs[i]) for i in chunk_ids]  # fresh ids: nothing served from cache
        return len(client.caption(items, max_new_tokens=max_new_tokens))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = sum(pool.map(send, chunks))
    elapsed = time.perf_counter() - t0
    assert done == len(pairs)
    return len(pairs) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint folder (default: a freshly built tiny model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=8, help="device batch, in-process and in the server")
    parser.add_argument("--request-size", type=int, default=4, help="pairs per HTTP request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object (last line)")
    args = parser.parse_args()

    from ccexpert.client import encode_png
    from ccexpert.engine import CaptionEngine

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from ccexpert.presets import save_tiny_model

            model = str(save_tiny_model(Path(tmp) / "tiny", seed=0))
        engine = CaptionEngine.from_pretrained(model, device=args.device, dtype=args.dtype, max_batch=args.batch_size)
        info = engine.info()
        pairs = make_pairs(args.pairs, info["chip_size"])
        engine.caption(pairs[:1], max_new_tokens=2)  # warm-up

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ccexpert.cli",
                "serve",
                "--model",
                model,
                "--device",
                args.device,
                "--dtype",
                args.dtype,
                "--port",
                str(port),
                "--device-batch",
                str(args.batch_size),
                "--max-batch",
                str(max(args.request_size, args.batch_size)),
                "--max-new-tokens",
                str(args.max_new_tokens),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=dict(os.environ),
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if requests.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.2)
            run_http(url, pairs[:2], 2, 1, 2, "warmup")
            t0 = time.perf_counter()
            encoded = [(encode_png(b), encode_png(a)) for b, a in pairs]
            encode_ms = (time.perf_counter() - t0) * 1000 / len(pairs)
            engine_rates, service_rates, e2e_rates = [], [], []
            for r in range(args.rounds):
                engine_rates.append(run_engine(engine, pairs, args.max_new_tokens))
                service_rates.append(
                    run_http(url, encoded, args.request_size, args.clients, args.max_new_tokens, f"s{r}")
                )
                e2e_rates.append(run_http(url, pairs, args.request_size, args.clients, args.max_new_tokens, f"e{r}"))
                print(
                    f"round {r + 1}: in-process {engine_rates[-1]:.3f}, HTTP service {service_rates[-1]:.3f}, "
                    f"HTTP end to end {e2e_rates[-1]:.3f} pairs/s",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(30)

    best_engine, best_service, best_e2e = max(engine_rates), max(service_rates), max(e2e_rates)
    print(
        f"model {info['model_name']} on {info['device']} ({info['dtype']}), {args.pairs} pairs of "
        f"{info['chip_size']} px, device batch {args.batch_size}, {args.clients} clients x {args.request_size} "
        f"pairs/request, max_new_tokens {args.max_new_tokens}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    print(f"client PNG encoding: {encode_ms:.1f} ms per pair (both chips)")
    print(f"in-process:        {best_engine:.3f} pairs/s")
    print(f"HTTP service:      {best_service:.3f} pairs/s")
    print(f"HTTP end to end:   {best_e2e:.3f} pairs/s")
    print(
        f"ratio HTTP service / in-process = {best_service / best_engine:.3f} "
        f"(overhead {1 - best_service / best_engine:.1%}; goal <= 15%)"
    )
    print(
        f"ratio HTTP end to end / in-process = {best_e2e / best_engine:.3f} "
        f"(overhead {1 - best_e2e / best_engine:.1%}; client encoding on the same cores)"
    )
    med = statistics.median
    print(
        f"medians over {args.rounds} rounds: service/in-process {med(service_rates) / med(engine_rates):.3f}, "
        f"end to end/in-process {med(e2e_rates) / med(engine_rates):.3f}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "in_process_pairs_per_s": best_engine,
                    "service_pairs_per_s": best_service,
                    "e2e_pairs_per_s": best_e2e,
                    "ratio_service": best_service / best_engine,
                    "ratio_e2e": best_e2e / best_engine,
                    "median_ratio_service": med(service_rates) / med(engine_rates),
                    "median_ratio_e2e": med(e2e_rates) / med(engine_rates),
                    "encode_ms_per_pair": encode_ms,
                    "rounds": args.rounds,
                    "pairs": args.pairs,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
