"""``ccexpert convert SRC DST``: an official CCExpert checkpoint (LLaVA-NeXT key layout) -> this project's format.

Drops SigLIP layer 27 (never used), ``mm_cc_projector`` and the DIM's dead parameters, maps the projector, LLM and DIM
keys, and refuses (listing them) unknown or missing keys before writing anything. Safetensors only: pickled weights
are never loaded.

``ccexpert convert --from-llava-onevision SRC DST`` instead starts a CCExpert from a LLaVA-OneVision checkpoint in
HF format (e.g. llava-hf/llava-onevision-qwen2-0.5b-ov-hf) with a freshly initialised DIM, for training stage 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="official CCExpert checkpoint -> this project's format",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", help="official checkpoint folder (or, with --from-llava-onevision, a folder or hub id)")
    parser.add_argument("dst", type=Path, help="output folder")
    parser.add_argument(
        "--from-llava-onevision", action="store_true", help="SRC is an HF LLaVA-OneVision checkpoint: add a fresh DIM"
    )
    parser.add_argument(
        "--vision-config",
        type=Path,
        default=None,
        help="JSON SigLIP config when the official config names an unknown vision tower",
    )
    parser.add_argument(
        "--dim-num-heads",
        type=int,
        default=None,
        help="DIM attention heads (default: the reference's vision width // 128, i.e. 9)",
    )
    parser.add_argument("--dim-layers", default=None, help="comma-separated SigLIP layers for the DIM (OV init only)")
    parser.add_argument(
        "--dtype",
        choices=["bf16", "fp16", "fp32"],
        default=None,
        help="cast the weights (default: keep the source dtype; OV init: fp32)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fresh DIM (OV init only)")


def run(args) -> int:
    import torch

    from ccexpert.checkpoints import CheckpointError
    from ccexpert.convert_ccexpert import convert_official_checkpoint, init_from_llava_onevision

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(args.dtype)
    try:
        if args.from_llava_onevision:
            from transformers import AutoTokenizer

            layers = [int(x) for x in args.dim_layers.split(",")] if args.dim_layers else None
            model = init_from_llava_onevision(args.src, dim_layers=layers, dtype=dtype or torch.float32, seed=args.seed)
            tokenizer = AutoTokenizer.from_pretrained(args.src)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = "<|endoftext|>"
            model.save_pretrained(args.dst)
            tokenizer.save_pretrained(args.dst)
        else:
            vision = json.loads(args.vision_config.read_text()) if args.vision_config else None
            convert_official_checkpoint(
                args.src, args.dst, vision_config=vision, dtype=dtype, dim_num_heads=args.dim_num_heads
            )
    except (CheckpointError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst}")
    return 0
