"""``ccexpert bench``: captioning throughput (pairs/s) of the reference's way vs our batched path, side by side.

(a) reference: one pair per `generate` call (the reference's evaluation loop, batch 1);
(b) ours: `CaptionEngine.caption` on the whole list, `--batch-size` pairs per `generate` call.
Both run the same random-weight model of a preset in the same dtype (bf16 on GPU, fp32 on CPU) and generate exactly
`--new-tokens` tokens per pair (end-of-caption suppressed until then), so they do the same work. Also prints the
share of the FLOP ceiling from docs/serving_notes (H100, ~800 dense bf16 TFLOP/s): ~322 pairs/s for 0.5B, ~37 for 7B.
On a CPU use `--preset tiny` (the ceiling share is then not applicable).
"""

from __future__ import annotations

import argparse
import json
import time

# pairs/s ceilings on one H100 (serving_notes.md: 729 tokens per image, ~1,500 prompt tokens, ~20 output tokens)
H100_CEILING_PAIRS_PER_S = {"0.5b": 322.0, "7b": 37.0}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure captioning throughput (pairs/s) against the FLOP ceiling",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=["tiny", "0.5b", "7b"], default="tiny")
    parser.add_argument("--pairs", type=int, default=None, help="pairs per path (default: 8 on CPU, 64 on GPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per generate call in (b) (default: all)")
    parser.add_argument("--new-tokens", type=int, default=20, help="tokens generated per pair (default 20)")
    parser.add_argument(
        "--reference-pairs", type=int, default=None, help="pairs timed for the slow path (a) (default: min(--pairs, 8))"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16, fp32")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _random_pairs(count: int, size: int = 256, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return [
        (rng.integers(0, 256, (size, size, 3), dtype=np.uint8), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        for _ in range(count)
    ]


def _timed(fn, device) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def measure(args) -> dict:
    import torch

    from ccexpert.engine import CaptionEngine, resolve_device, resolve_dtype
    from ccexpert.presets import build_model, build_tiny_tokenizer
    from ccexpert.processing_ccexpert import CCExpertProcessor

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    pairs_count = args.pairs or (64 if device.type == "cuda" else 8)
    batch_size = args.batch_size or pairs_count
    reference_count = args.reference_pairs or min(pairs_count, 8)
    tokenizer = build_tiny_tokenizer()  # no Qwen tokenizer offline; the vocabulary (LM head) keeps the preset's size
    with torch.device(device):
        model = build_model(args.preset, tokenizer, seed=0).to(dtype)
    engine = CaptionEngine(model, CCExpertProcessor(tokenizer), max_batch=batch_size)
    pairs = _random_pairs(pairs_count)
    n = args.new_tokens

    def one_by_one(items):
        for pair in items:
            engine.caption([pair], max_new_tokens=n, min_new_tokens=n)

    one_by_one(pairs[:1])  # warm-up (kernels, allocator)
    engine.caption(pairs[: min(batch_size, pairs_count)], max_new_tokens=n, min_new_tokens=n)
    reference_s = _timed(lambda: one_by_one(pairs[:reference_count]), device)
    batched_s = _timed(lambda: engine.caption(pairs, max_new_tokens=n, min_new_tokens=n), device)
    reference_rate = reference_count / reference_s
    batched_rate = pairs_count / batched_s
    ceiling = H100_CEILING_PAIRS_PER_S.get(args.preset)
    return {
        "preset": args.preset,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "new_tokens_per_pair": n,
        "pairs": pairs_count,
        "batch_size": batch_size,
        "reference_pairs_per_s": round(reference_rate, 3),
        "batched_pairs_per_s": round(batched_rate, 3),
        "speedup": round(batched_rate / reference_rate, 2),
        "h100_ceiling_pairs_per_s": ceiling,
        "share_of_ceiling": round(batched_rate / ceiling, 4) if ceiling and device.type == "cuda" else None,
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda"
        else None,
    }


def run(args) -> int:
    result = measure(args)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"preset {result['preset']} on {result['device']} ({result['dtype']}), {result['new_tokens_per_pair']} new "
        f"tokens per pair"
    )
    print(f"(a) one pair per generate call : {result['reference_pairs_per_s']:10.3f} pairs/s")
    print(f"(b) batched, {result['batch_size']:4d} per call     : {result['batched_pairs_per_s']:10.3f} pairs/s")
    print(f"ratio (b)/(a)                  : {result['speedup']:10.2f}x")
    if result["share_of_ceiling"] is not None:
        print(
            f"share of the H100 FLOP ceiling ({result['h100_ceiling_pairs_per_s']:.0f} pairs/s): "
            f"{100 * result['share_of_ceiling']:.1f}%"
        )
    else:
        print("share of the FLOP ceiling: n/a (the ceiling is for 0.5B/7B on an H100)")
    return 0
