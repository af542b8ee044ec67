"""The prepared GPU benchmark (issue 29): `bench/gpu.sh` runs it. For the 0.5B and 7B presets with random weights in
bf16 (fixed-length captions, `--new-tokens` per pair):

- pairs/s vs batch size (1, 8, 32, 64, 128), batch 1 = one pair per `generate` call, and the share of the H100
  FLOP ceiling (serving_notes.md: ~322 pairs/s for 0.5B, ~37 for 7B);
- peak GPU memory per batch size;
- preparation time per batch (CPU: `CaptionEngine.prepare`) vs generate time per batch (device): a run whose
  preparation approaches its generate time is CPU-bound, and the overlap can no longer hide it;
- the HTTP service (`create_app`, uvicorn in this process) on the same GPU and model, `--clients` clients sending
  PNGs encoded before the clock starts.

Writes `<out>/gpu.json` and `<out>/gpu.txt` (a short table). `--tiny` runs the tiny preset on the CPU with small
counts (what CI runs; its figures say nothing about a GPU).

    bash bench/gpu.sh                 # on a GPU machine, <= 8 minutes
    bash bench/gpu.sh --tiny          # CPU, ~1 minute
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chips import chip_pairs

H100_CEILING_PAIRS_PER_S = {"0.5b": 322.0, "7b": 37.0}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_engine(preset: str, device: torch.device, dtype: torch.dtype, max_batch: int):
    from ccexpert.engine import CaptionEngine
    from ccexpert.presets import build_model, build_tiny_tokenizer
    from ccexpert.processing_ccexpert import CCExpertProcessor

    tokenizer = build_tiny_tokenizer()  # no Qwen tokenizer offline; the LM head keeps the preset's vocabulary
    model = build_model(preset, tokenizer, seed=0, device=device).to(dtype)
    return CaptionEngine(model, CCExpertProcessor(tokenizer), max_batch=max_batch, model_name=f"random-{preset}")


def sweep(engine, pairs, batch_sizes, new_tokens: int, device: torch.device) -> list[dict]:
    rows = []
    for size in batch_sizes:
        engine.max_batch = size
        count = max(size * 2, 8) if size > 1 else 8
        items = [pairs[i % len(pairs)] for i in range(count)]
        engine.caption(items[:size], max_new_tokens=2, min_new_tokens=2)  # warm-up at this shape
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        prepare_s, generate_s = [], []
        start = time.perf_counter()
        for first in range(0, count, size):  # timed apart: preparation (CPU) and generate (device)
            t0 = time.perf_counter()
            batch = engine.prepare(items[first : first + size], first)
            t1 = time.perf_counter()
            engine.generate_prepared(batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
            _sync(device)
            prepare_s.append(t1 - t0)
            generate_s.append(time.perf_counter() - t1)
        serial = count / (time.perf_counter() - start)
        _sync(device)
        start = time.perf_counter()
        engine.caption(items, max_new_tokens=new_tokens, min_new_tokens=new_tokens)  # with the overlap
        _sync(device)
        rate = count / (time.perf_counter() - start)
        rows.append(
            {
                "batch_size": size,
                "pairs": count,
                "pairs_per_s": round(rate, 2),
                "pairs_per_s_without_overlap": round(serial, 2),
                "prepare_ms_per_batch": round(1000 * statistics.median(prepare_s), 2),
                "generate_ms_per_batch": round(1000 * statistics.median(generate_s), 2),
                "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
                if device.type == "cuda"
                else None,
            }
        )
        print(f"  batch {size:4d}: {rate:9.2f} pairs/s", flush=True)
    return rows


def http_rate(engine, pairs, clients: int, request_size: int, new_tokens: int, device_batch: int) -> float:
    import uvicorn
    from ccexpert.client import CCExpertClient, ChipPair, encode_png
    from ccexpert.service import Settings, create_app

    engine.max_batch = device_batch
    settings = Settings(device_batch=device_batch, max_batch=request_size, max_new_tokens=new_tokens)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(settings, engine), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        client = CCExpertClient(url, read_timeout=600)
        deadline = time.monotonic() + 300
        while not server.started or not client.ready():
            if time.monotonic() > deadline:
                raise SystemExit("the service did not become ready")
            time.sleep(0.2)
        encoded = [(encode_png(b), encode_png(a)) for b, a in pairs]
        chunks = [range(i, min(i + request_size, len(encoded))) for i in range(0, len(encoded), request_size)]

        def send(ids, tag: str) -> int:
            items = [ChipPair(f"{tag}_{i}", *encoded[i]) for i in ids]  # fresh ids: nothing from the cache
            return len(CCExpertClient(url, read_timeout=600).caption(items, max_new_tokens=new_tokens))

        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda ids: send(ids, "warm"), chunks[:clients]))
            start = time.perf_counter()
            assert sum(pool.map(lambda ids: send(ids, "timed"), chunks)) == len(encoded)
        return len(encoded) / (time.perf_counter() - start)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def run_preset(args, preset: str, device: torch.device, dtype: torch.dtype) -> dict:
    print(f"{preset}: building random weights on {device}", flush=True)
    engine = build_engine(preset, device, dtype, max(args.batch_sizes))
    pairs, source = chip_pairs(max(args.batch_sizes) * 2, args.chip)
    rows = sweep(engine, pairs, args.batch_sizes, args.new_tokens, device)
    ceiling = H100_CEILING_PAIRS_PER_S.get(preset) if device.type == "cuda" else None
    for row in rows:
        row["share_of_h100_ceiling"] = round(row["pairs_per_s"] / ceiling, 4) if ceiling else None
    http = http_rate(
        engine, pairs[: args.http_pairs], args.clients, args.request_size, args.new_tokens, args.http_batch
    )
    print(f"  HTTP service: {http:9.2f} pairs/s", flush=True)
    one = next(r for r in rows if r["batch_size"] == 1)
    best = max(rows, key=lambda r: r["pairs_per_s"])
    del engine
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "preset": preset,
        "chips": source,
        "h100_ceiling_pairs_per_s": ceiling,
        "batches": rows,
        "one_pair_per_call_pairs_per_s": one["pairs_per_s"],
        "best_batched_pairs_per_s": best["pairs_per_s"],
        "best_batch_size": best["batch_size"],
        "batched_over_one_per_call": round(best["pairs_per_s"] / one["pairs_per_s"], 2),
        "http_pairs_per_s": round(http, 2),
        "http_device_batch": args.http_batch,
        "http_over_engine_same_batch": round(
            http / next((r["pairs_per_s"] for r in rows if r["batch_size"] == args.http_batch), best["pairs_per_s"]),
            3,
        ),
    }


def table(result: dict) -> str:
    lines = [f"{result['device']} ({result['dtype']}), {result['new_tokens']} new tokens per pair"]
    if result["tiny"]:
        lines.append("TINY RUN ON CPU: checks the script, says nothing about a GPU")
    for p in result["presets"]:
        lines.append(f"{p['preset']} (random weights, {p['chips']} chips)")
        lines.append("  batch   pairs/s  no-overlap  ceiling%  prepare ms  generate ms  peak GiB")
        for r in p["batches"]:
            share = (
                f"{100 * r['share_of_h100_ceiling']:7.1f}%" if r["share_of_h100_ceiling"] is not None else "     n/a"
            )
            memory = f"{r['peak_gpu_memory_gib']:8.2f}" if r["peak_gpu_memory_gib"] is not None else "     n/a"
            lines.append(
                f"  {r['batch_size']:5d} {r['pairs_per_s']:9.2f} {r['pairs_per_s_without_overlap']:11.2f} {share} "
                f"{r['prepare_ms_per_batch']:11.2f} {r['generate_ms_per_batch']:12.2f} {memory}"
            )
        lines.append(
            f"  batched / one per call: {p['batched_over_one_per_call']:.2f}x;  HTTP service "
            f"(device batch {p['http_device_batch']}): {p['http_pairs_per_s']:.2f} pairs/s = "
            f"{100 * p['http_over_engine_same_batch']:.0f}% of the engine"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="the tiny preset on the CPU, small counts (CI)")
    parser.add_argument("--presets", default=None, help="comma-separated (default 0.5b,7b; tiny with --tiny)")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 1,8,32,64,128; 1,2,4 tiny)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens per pair (default 20; 4 tiny)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--request-size", type=int, default=8)
    parser.add_argument("--out", default="bench/out", help="folder for gpu.json and gpu.txt")
    args = parser.parse_args(argv)
    args.presets = (args.presets or ("tiny" if args.tiny else "0.5b,7b")).split(",")
    args.batch_sizes = [int(b) for b in (args.batch_sizes or ("1,2,4" if args.tiny else "1,8,32,64,128")).split(",")]
    if 1 not in args.batch_sizes or min(args.batch_sizes) < 1:
        parser.error("--batch-sizes must hold 1 (one pair per call) and only positive sizes")
    args.new_tokens = args.new_tokens or (4 if args.tiny else 20)
    args.chip = 384
    args.http_batch = 4 if args.tiny else 32
    args.http_pairs = 16 if args.tiny else 256
    if args.tiny:
        args.clients = min(args.clients, 4)
        device, dtype = torch.device("cpu"), torch.float32
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no GPU: run with --tiny on a CPU")
        device, dtype = torch.device("cuda"), torch.bfloat16
    started = time.perf_counter()
    result = {
        "tiny": args.tiny,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "new_tokens": args.new_tokens,
        "presets": [run_preset(args, preset, device, dtype) for preset in args.presets],
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(result, indent=1) + "\n")
    text = table(result)
    (out / "gpu.txt").write_text(text)
    print(text + f"wrote {out / 'gpu.json'} and {out / 'gpu.txt'} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
