"""``ccexpert caption BEFORE AFTER [--model DIR]``: print the change caption of one before/after image pair.

Images are read with PIL (PNG, JPEG, 8-bit TIFF, ...) and converted to RGB; the model squash-resizes them to 384 px.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "caption",
        help="caption one before/after image pair",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("before", type=Path, help="the earlier image")
    parser.add_argument("after", type=Path, help="the later image")
    parser.add_argument(
        "--model", default=None, help="checkpoint folder or hub id (default: $CCEXPERT_MODEL, else ccexpert/demo_model)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--beams", type=int, default=1, help="beam search width (1 = greedy, the reference setting)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32")
    parser.add_argument("--json", action="store_true", help="print caption, confidence, changed and num_tokens as JSON")


def read_image(path: Path, which: str):
    """An RGB PIL image, or a ValueError that names the file and what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ValueError(f"{which} image {path}: no such file")
    try:
        with Image.open(path) as image:
            if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "YCbCr"):
                raise ValueError(f"{which} image {path}: expected an 8-bit RGB or grey image, got mode {image.mode}")
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{which} image {path}: not a readable image ({error})") from error


def run(args) -> int:
    from ccexpert.checkpoints import CheckpointError
    from ccexpert.engine import CaptionEngine

    try:
        pair = (read_image(args.before, "before"), read_image(args.after, "after"))
        engine = CaptionEngine.from_pretrained(args.model, device=args.device, dtype=args.dtype)
        result = engine.caption([pair], max_new_tokens=args.max_new_tokens, num_beams=args.beams)[0]
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict()) if args.json else result.caption)
    return 0
