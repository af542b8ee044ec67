"""Pairs/s of decode + prepare (the CPU work in front of the device), today's path vs the new one, vs the raw floor.

Chips: 384 px crops of the real rasters in ../shared/data when present, else generated textured chips, PNG-encoded
before the clock starts. Per pair and per batch of ``--batch``:

- before: the issue's path end to end: chips as the clients sent them then (PIL / GDAL at zlib level 1: adaptive,
  mostly Paeth, rows), PIL's PNG decode (what ``service.images`` used), then ``CCExpertProcessor(batch)`` (float32
  pixels, prompt rows built per batch), batches spread over the threads;
- after: chips as the clients send them now (``core.png.encode_rgb``: "Up" rows, level 1, run-length strategy),
  the service's decode (``service.images.decode_pair``: header checks, libpng through imagecodecs, GIL released) in
  the shared worker pool, then ``CaptionEngine.prepare`` (uint8 copy, cached prompt rows; scaling and normalisation
  move to the device);
- raw floor: zlib inflate of the after PNGs' IDAT data + memcpy of the inflated bytes, nothing else.

Each is measured with one thread and with all cores (a child process per thread count, the pool sized by
``CCEXPERT_PREP_WORKERS``), rounds alternating, best round kept. ``--png-levels`` also times the encoders: the
clients' one (``core.png``), the level-1 adaptive rows they wrote before (PIL's, like GDAL's) and zlib's default
level 6. Goal (issue 29): after >= 400 pairs/s on 2 cores and >= 60 % of the raw floor.
``--json`` prints ``{"cores": N, "pairs_per_s": {"before": ..., "after": ..., "raw_floor": ...}, ...}`` last.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_prepare.py --png-levels
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chips import chip_pairs, png

CHIP = 384


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _idat(data: bytes) -> bytes:
    """The concatenated IDAT payload of a PNG (the zlib stream)."""
    out, at = [], 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"IDAT":
            out.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return b"".join(out)


def _pil_decode(data: bytes) -> np.ndarray:
    """The issue's decode: PIL, which holds the GIL for part of each chip."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data), formats=["PNG"]).convert("RGB"), dtype=np.uint8)


def _best(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def child(args) -> dict:
    """Measure the three paths with `args.threads` threads (the worker pool is sized by the environment)."""
    from ccexpert.client import encode_png
    from ccexpert.prefetch import default_workers, worker_pool
    from ccexpert.service.images import decode_pair
    from ccexpert.standin import standin_engine
    from ccexpert_changes.core.png import PNG_ZLEVEL

    threads = args.threads
    assert default_workers() == threads, "the pool must be sized like the thread count"
    pairs, source = chip_pairs(args.pairs, CHIP, args.source)
    encoded = [(encode_png(b), encode_png(a)) for b, a in pairs]  # what the clients send now
    old_encoded = [(png(b, PNG_ZLEVEL), png(a, PNG_ZLEVEL)) for b, a in pairs]  # what they sent (PIL, adaptive rows)
    ids = [str(i) for i in range(len(encoded))]
    engine = standin_engine(0.0, image_size=CHIP, max_batch=args.batch)  # the real CaptionEngine.prepare
    processor = engine.processor
    batches = [list(range(s, min(s + args.batch, len(encoded)))) for s in range(0, len(encoded), args.batch)]
    outer = ThreadPoolExecutor(max_workers=threads)

    def before_batch(indices):
        decoded = [(_pil_decode(old_encoded[i][0]), _pil_decode(old_encoded[i][1])) for i in indices]
        return processor(decoded)["pixel_values"].shape[0]

    def before():
        assert sum(outer.map(before_batch, batches)) == len(encoded)

    def after():
        pool = worker_pool()
        done = 0
        for indices in batches:
            decoded = list(pool.map(lambda i: decode_pair(*encoded[i], ids[i], CHIP), indices))
            done += engine.prepare(decoded)["pixel_values"].shape[0]
        assert done == len(encoded)

    idats = [(_idat(b), _idat(a)) for b, a in encoded]
    row = CHIP * (CHIP * 3 + 1)  # inflated PNG rows: a filter byte + the pixels
    buffers = [np.empty((2, row), np.uint8) for _ in range(threads)]

    def raw_pair(index: int) -> None:
        out = buffers[index % threads]
        for slot in (0, 1):
            out[slot] = np.frombuffer(zlib.decompress(idats[index][slot]), np.uint8)

    def raw_floor():
        list(outer.map(raw_pair, range(len(idats))))

    after()  # warm-up: the pool's threads, the prompt row, page faults
    before_batch(batches[0])
    times = {"before": float("inf"), "after": float("inf"), "raw_floor": float("inf")}
    for _ in range(args.rounds):  # alternating, so load from other processes hits every path alike
        for name, fn in (("before", before), ("after", after), ("raw_floor", raw_floor)):
            times[name] = min(times[name], _best(fn, 1))
    result = {
        "threads": threads,
        "source": source,
        "pairs": len(encoded),
        "batch": args.batch,
        "png_level": PNG_ZLEVEL,
        "png_bytes_per_chip": round(sum(len(b) + len(a) for b, a in encoded) / (2 * len(encoded))),
        "old_png_bytes_per_chip": round(sum(len(b) + len(a) for b, a in old_encoded) / (2 * len(old_encoded))),
        "pairs_per_s": {name: round(len(encoded) / seconds, 1) for name, seconds in times.items()},
    }
    if args.png_levels:
        chips = [image for pair in pairs[: min(16, len(pairs))] for image in pair]
        encoders = {  # the clients' one encoder now, what they wrote before, zlib's default level
            f"{PNG_ZLEVEL}, Up rows, run-length (both clients)": encode_png,
            f"{PNG_ZLEVEL}, adaptive rows (PIL / GDAL, before)": lambda c: png(c, PNG_ZLEVEL),
            "6, adaptive rows (zlib default)": lambda c: png(c, 6),
        }
        levels = {}
        for name, encode in encoders.items():
            seconds = _best(lambda encode=encode: [encode(c) for c in chips], args.rounds)
            levels[name] = {
                "encode_ms_per_chip": round(1000 * seconds / len(chips), 2),
                "bytes_per_chip": round(sum(len(encode(c)) for c in chips) / len(chips)),
            }
        result["png_levels"] = levels
    return result


def run_child(threads: int, args) -> dict:
    env = {**os.environ, "CCEXPERT_PREP_WORKERS": str(threads), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--child", "--threads", str(threads), "--pairs", str(args.pairs)]
    command += ["--batch", str(args.batch), "--rounds", str(args.rounds), "--source", args.source]
    command += ["--png-levels"] if args.png_levels and threads == 1 else []
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child with {threads} threads failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32, help="pairs per device batch (default 32, a GPU's)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", choices=["auto", "real", "generated"], default="auto")
    parser.add_argument("--png-levels", action="store_true", help="also time the clients' PNG encoders vs level 6")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.batch < 1 or args.rounds < 1:
        parser.error("--pairs, --batch and --rounds must be >= 1")
    if args.child:
        print(json.dumps(child(args)))
        return 0
    cores = _cores()
    one = run_child(1, args)
    every = run_child(cores, args) if cores > 1 else one
    print(
        f"decode + prepare, {one['pairs']} pairs of {CHIP} px {one['source']} chips, PNG as the clients send them "
        f"({one['png_bytes_per_chip']:,} bytes per chip; before {one['old_png_bytes_per_chip']:,}), "
        f"batches of {args.batch}; pairs/s (best of {args.rounds})"
    )
    print(f"{'path':<34}{'1 thread':>12}{f'{cores} cores':>12}")
    labels = {
        "before": "before (decode + processor, float)",
        "after": "after (pool decode + uint8 prepare)",
        "raw_floor": "raw floor (inflate + memcpy)",
    }
    for key, label in labels.items():
        print(f"{label:<34}{one['pairs_per_s'][key]:>12.1f}{every['pairs_per_s'][key]:>12.1f}")
    rates = every["pairs_per_s"]
    ratios = {
        "after_over_before": round(rates["after"] / rates["before"], 2),
        "after_over_raw_floor": round(rates["after"] / rates["raw_floor"], 3),
        "after_over_before_1_thread": round(one["pairs_per_s"]["after"] / one["pairs_per_s"]["before"], 2),
    }
    print(
        f"after / before ({cores} cores): {ratios['after_over_before']:.2f}x;  after / raw floor: "
        f"{100 * ratios['after_over_raw_floor']:.0f}% (goals: >= 400 pairs/s on 2 cores, >= 60% of the floor)"
    )
    if "png_levels" in one:
        levels = one["png_levels"]
        for level, figures in levels.items():
            print(
                f"PNG encode, zlib level {level}: {figures['encode_ms_per_chip']:.2f} ms per chip, "
                f"{figures['bytes_per_chip']:,} bytes"
            )
    if args.json:
        summary = {
            "cores": cores,
            "pairs_per_s": rates,
            "one_thread_pairs_per_s": one["pairs_per_s"],
            **ratios,
            "source": one["source"],
            "png_levels": one.get("png_levels"),
        }
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
