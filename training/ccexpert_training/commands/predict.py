"""``ccexpert predict DATA.jsonl --model DIR -o PRED.jsonl``: caption every pair of a records file.

Writes ``{"uid", "pred", "change_caption": [references]}`` lines (the reference's published format, what
``ccexpert eval`` reads). Every record is checked first (missing / unreadable images, size mismatch -> an error naming
the record, before any generation); lines are written as they are produced, and the file appears under its final
name only when complete.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "write predictions for a dataset of pairs"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="write predictions for a dataset of pairs",
        description="Greedy captions for every record of DATA.jsonl, in the format `ccexpert eval` scores.",
    )
    parser.add_argument("data", type=Path, help="records JSONL ({uid, before, after, captions, ...})")
    parser.add_argument("--model", default=None, help="checkpoint folder or hub id (default: the default model)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="predictions JSONL to write")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per generate call (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="generation limit (default 64)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16, fp32")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..records import Prediction, RecordError, read_records

    if args.batch_size < 1 or args.max_new_tokens < 1:
        print("error: --batch-size and --max-new-tokens must be >= 1", file=sys.stderr)
        return 2
    try:
        records = read_records(args.data, require_captions=False)
        for record in records:  # references are optional here (unlabelled data); images are not
            record.check_images()
    except RecordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from ccexpert.engine import CaptionEngine

    try:
        engine = CaptionEngine.from_pretrained(
            args.model, device=args.device, dtype=args.dtype, max_batch=args.batch_size
        )
    except (OSError, ValueError) as exc:
        print(f"error: cannot load the model {args.model or '(default)'}: {exc}", file=sys.stderr)
        return 2
    engine.wording = "scene"  # predictions are scored against LEVIR-CC references, which say "the scene"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as handle, tqdm(total=len(records), unit="pair") as bar:
            for start in range(0, len(records), args.batch_size):
                chunk = records[start : start + args.batch_size]
                results = engine.caption([r.load_images() for r in chunk], max_new_tokens=args.max_new_tokens)
                for record, result in zip(chunk, results, strict=True):
                    line = Prediction(record.uid, result.caption, tuple(record.captions)).to_json()
                    handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                bar.update(len(chunk))
    except RecordError as exc:
        print(f"error: {exc} (predictions so far kept in {partial})", file=sys.stderr)
        return 2
    partial.replace(args.output)
    print(f"{len(records)} predictions -> {args.output}", file=sys.stderr)
    return 0
