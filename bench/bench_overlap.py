"""Does the CPU keep the device busy? The engine and the HTTP service with a stand-in model whose `generate` waits a
fixed time per batch (as a GPU would; ``ccexpert.standin``), with and without overlap, side by side in one run.

- engine: ``CaptionEngine.caption`` on decoded 384 px chips, ``--batch`` pairs per call of `generate`, prefetch on
  (chunk k+1 prepared while chunk k waits) vs off. Goal (issue 29): >= 90 % of the stand-in's own rate
  (batch / wait) when preparation is faster than the model.
- service: ``ccexpert serve``'s app (uvicorn, a child process) over the same stand-in, ``--clients`` concurrent
  clients sending PNGs encoded before the clock starts; the batcher prepares ahead (on) vs an engine without the
  prepare step (off). Goal: >= 300 pairs/s on 2 cores (needs ``--service-wait-ms`` short enough that the stand-in
  allows it: batch / wait > 300).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_overlap.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import free_port
from chips import chip_pairs

CHIP = 384


class NoPrepare:
    """The same engine seen without its prepare step: the batcher then calls `caption` (no overlap)."""

    def __init__(self, engine):
        self._engine = engine

    def info(self):
        return self._engine.info()

    def caption(self, pairs, max_new_tokens: int = 64):
        return self._engine.caption(pairs, max_new_tokens=max_new_tokens)


def engine_rates(args, pairs) -> dict:
    from ccexpert.standin import standin_engine

    wait = args.engine_wait_ms / 1000.0
    engines = {name: standin_engine(wait, CHIP, args.batch, prefetch=depth) for name, depth in (("off", 0), ("on", 2))}
    for engine in engines.values():
        engine.caption(pairs[: args.batch], max_new_tokens=8)  # warm-up
    best = {"off": 0.0, "on": 0.0}
    for _ in range(args.rounds):
        for name, engine in engines.items():
            start = time.perf_counter()
            assert len(engine.caption(pairs, max_new_tokens=8)) == len(pairs)
            best[name] = max(best[name], len(pairs) / (time.perf_counter() - start))
    own = args.batch / wait
    return {
        "standin_pairs_per_s": round(own, 1),
        "without_overlap": round(best["off"], 1),
        "with_overlap": round(best["on"], 1),
        "share_of_standin_with_overlap": round(best["on"] / own, 3),
        "share_of_standin_without_overlap": round(best["off"] / own, 3),
    }


def serve(args) -> int:
    """Child process: the service app over the stand-in (prefetching or not)."""
    import uvicorn
    from ccexpert.service import Settings, create_app
    from ccexpert.standin import standin_engine

    engine = standin_engine(args.service_wait_ms / 1000.0, CHIP, args.batch)
    settings = Settings(
        device_batch=args.batch, max_batch=args.request_size, max_wait_ms=5, max_new_tokens=8, log_level="warning"
    )
    app = create_app(settings, engine if args.serve == "on" else NoPrepare(engine))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


def service_rate(args, encoded, mode: str) -> float:
    from ccexpert.client import CCExpertClient, ChipPair

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, __file__, "--serve", mode, "--port", str(port), "--batch", str(args.batch)]
    command += ["--request-size", str(args.request_size), "--service-wait-ms", str(args.service_wait_ms)]
    server = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the {mode} server did not start")
            time.sleep(0.2)
        chunks = [range(i, min(i + args.request_size, len(encoded))) for i in range(0, len(encoded), args.request_size)]
        best = 0.0
        for round_ in range(args.rounds + 1):  # round 0 warms up

            def send(ids, round_=round_) -> int:
                client = CCExpertClient(url, read_timeout=600)
                items = [ChipPair(f"r{round_}_{i}", *encoded[i]) for i in ids]  # fresh ids: no cache hits
                return len(client.caption(items, max_new_tokens=8))

            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                assert sum(pool.map(send, chunks)) == len(encoded)
            if round_:
                best = max(best, len(encoded) / (time.perf_counter() - start))
        return best
    finally:
        server.terminate()
        server.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--engine-wait-ms", type=float, default=200.0, help="stand-in wait per batch (engine part)")
    parser.add_argument("--service-wait-ms", type=float, default=80.0, help="stand-in wait per batch (service)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--request-size", type=int, default=8, help="pairs per HTTP request")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args)
    from ccexpert.client import encode_png

    pairs, source = chip_pairs(args.pairs, CHIP)
    result = {"cores": len(os.sched_getaffinity(0)), "source": source, "pairs": len(pairs), "batch": args.batch}
    result["engine"] = engine_rates(args, pairs)
    e = result["engine"]
    print(
        f"engine, stand-in waiting {args.engine_wait_ms:g} ms per batch of {args.batch} "
        f"({e['standin_pairs_per_s']:.1f} pairs/s on its own), {len(pairs)} {source} chips of {CHIP} px:"
    )
    print(
        f"  without overlap {e['without_overlap']:8.1f} pairs/s = {100 * e['share_of_standin_without_overlap']:.0f}%"
        f" of the stand-in;  with overlap {e['with_overlap']:8.1f} pairs/s = "
        f"{100 * e['share_of_standin_with_overlap']:.0f}% (goal >= 90%)"
    )
    if not args.skip_service:
        encoded = [(encode_png(b), encode_png(a)) for b, a in pairs]
        rates = {mode: service_rate(args, encoded, mode) for mode in ("off", "on")}
        own = args.batch / (args.service_wait_ms / 1000.0)
        result["service"] = {
            "clients": args.clients,
            "standin_pairs_per_s": round(own, 1),
            "without_overlap": round(rates["off"], 1),
            "with_overlap": round(rates["on"], 1),
        }
        print(
            f"service, {args.clients} clients, {args.request_size} pairs per request, stand-in "
            f"{args.service_wait_ms:g} ms per batch of {args.batch} ({own:.0f} pairs/s on its own):"
        )
        print(
            f"  without overlap {rates['off']:8.1f} pairs/s;  with overlap {rates['on']:8.1f} pairs/s "
            f"(goal >= 300 on 2 cores)"
        )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
