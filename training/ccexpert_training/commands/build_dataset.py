"""``ccexpert build-dataset``: a change-detection set (A/B/label, SYSU-CD, SECOND) -> caption records (JSONL)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "change-detection set (A/B/label) -> records"


def add_parser(subparsers) -> None:
    from ..maskcaption.facts import CHANGE_CLASSES, KINDS

    parser = subparsers.add_parser(
        "build-dataset",
        help="change-detection set (A/B/label) -> caption records",
        description="Caption every pair of a change-detection set from its change mask (facts: class, count, 3x3 "
        "location, size, appear/disappear/replace) and write training records. Layouts: A/B/label (LEVIR-CD), "
        "time1/time2/label (SYSU-CD), im1/im2/label1/label2 (SECOND), optionally under train/val/test; PNG or "
        "GeoTIFF. Optional rewrite through an OpenAI-compatible chat endpoint, with the same quality gates.",
    )
    parser.add_argument("root", type=Path, help="the change-detection set folder")
    parser.add_argument("--out", type=Path, required=True, help="records JSONL to write")
    parser.add_argument("--layout", choices=["levircd", "sysucd", "second"], default=None, help="default: detect")
    parser.add_argument(
        "--cls",
        choices=sorted(CHANGE_CLASSES),
        default="building",
        help="class of binary-mask changes (default building)",
    )
    parser.add_argument("--kind", choices=KINDS, default="appear", help="kind of binary-mask changes (default appear)")
    parser.add_argument(
        "--min-area",
        type=float,
        default=0.0005,
        help="ignore components smaller than this fraction of the image (default 0.0005)",
    )
    parser.add_argument(
        "--rewrite-url", default=None, help="OpenAI-compatible API base (e.g. http://localhost:8000/v1); off by default"
    )
    parser.add_argument("--rewrite-model", default=None, help="chat model name for --rewrite-url")
    parser.add_argument("--rewrite-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..builders import BuildError, build_records
    from ..maskcaption.rewrite import RewriteConfig

    rewrite = None
    if args.rewrite_url:
        if not args.rewrite_model:
            print("error: --rewrite-url needs --rewrite-model", file=sys.stderr)
            return 2
        rewrite = RewriteConfig(url=args.rewrite_url, model=args.rewrite_model, api_key_env=args.rewrite_key_env)
    try:
        with tqdm(desc="build-dataset", unit="pair") as bar:
            stats = build_records(
                args.root,
                args.out,
                layout=args.layout,
                cls=args.cls,
                kind=args.kind,
                min_area_fraction=args.min_area,
                rewrite=rewrite,
                progress=bar.update,
            )
    except (BuildError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {stats.pairs} records ({stats.changed} changed) to {args.out}; "
        f"{stats.converted_images} images converted, {stats.rejected_captions} captions rejected by the gates"
    )
    return 0
