"""``ccexpert report OUT.gpkg -o report.html``: a self-contained HTML page of a describe output."""

from __future__ import annotations

import argparse
import logging
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="HTML report of a describe output: map, changed tiles, captions", description=__doc__
    )
    p.add_argument("gpkg", help="GeoPackage written by `ccexpert describe`")
    p.add_argument("-o", "--output", required=True, help="HTML file to write")
    p.add_argument("--before", help="before raster, if it moved since the run")
    p.add_argument("--after", help="after raster, if it moved since the run")
    p.add_argument("--max-tiles", type=int, default=200, help="most changed tiles shown with their imagery")


def run(args: argparse.Namespace) -> int:
    from ccexpert.report import build_report

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        counts = build_report(args.gpkg, args.output, before=args.before, after=args.after, max_tiles=args.max_tiles)
    except (ValueError, OSError) as exc:
        print(f"ccexpert report: {exc}", file=sys.stderr)
        return 2
    print(f"{counts['tiles']} tiles, {counts['changed']} changed ({counts['shown']} shown) -> {args.output}")
    return 0
