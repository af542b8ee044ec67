"""``ccexpert synth``: write the synthetic bi-temporal benchmark, or (``--scene``) a georeferenced GeoTIFF scene."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "generate the synthetic bi-temporal benchmark and GeoTIFF scenes"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="generate the synthetic bi-temporal benchmark and GeoTIFF scenes",
        description="Procedural aerial-like before/after pairs (256x256) with semantic change masks and LEVIR-CC-style "
        "captions, written as DIR/{train,val,test}.jsonl with the images beside them; deterministic by seed. "
        "With --scene: a georeferenced before/after GeoTIFF scene (UTM, 0.5 m pixels) and changes.json.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--n", type=int, default=1000, help="number of pairs (split 80/10/10 into train/val/test)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (pair i depends only on seed and i)")
    parser.add_argument("--scene", action="store_true", help="write a GeoTIFF scene instead of the benchmark")
    parser.add_argument(
        "--no-date-shift",
        action="store_true",
        help="easy variant: both dates under the same sun, season and illumination (a training "
        "curriculum; the benchmark itself always has date shifts)",
    )
    parser.add_argument(
        "--zoom",
        type=float,
        default=1.0,
        help="show each pair through a window of 1/zoom of its tile around the change (changes "
        "cover zoom^2 more of the image; another curriculum step; default 1 = whole tiles)",
    )
    parser.add_argument("--workers", type=int, default=1, help="render in this many processes (same output)")
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="pair size in px (default 256) or, with --scene, scene size in px (default 2048)",
    )


def run(args: argparse.Namespace) -> int:
    from ..synth import make_scene_pair, write_benchmark

    try:
        if args.scene:
            before, after, changes = make_scene_pair(args.out, size=args.size or 2048, seed=args.seed)
            data = json.loads(changes.read_text())
            print(
                f"wrote {before}, {after} ({data['size']}x{data['size']} px, {data['crs']}, "
                f"{data['pixel_size']} m) and {changes} ({len(data['changes'])} changes)"
            )
            return 0
        from tqdm import tqdm

        with tqdm(total=args.n, desc="synth", unit="pair") as bar:
            paths = write_benchmark(
                args.out,
                n=args.n,
                seed=args.seed,
                size=args.size or 256,
                progress=bar.update,
                workers=args.workers,
                date_shift=not args.no_date_shift,
                zoom=args.zoom,
            )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for split, path in paths.items():
        count = sum(1 for _ in path.open())
        print(f"{split}: {count} pairs -> {path}")
    return 0
