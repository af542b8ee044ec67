"""``ccexpert eval PREDICTIONS.jsonl [--json]``: score predictions with the LEVIR-CC protocol (see metrics.py)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

HELP = "score predictions with the LEVIR-CC protocol"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score predictions with the LEVIR-CC protocol",
        description="Score {uid, pred, change_caption} lines: BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D, S*m (x100), "
        "change/no-change accuracy, and the change / no-change subsets. Duplicate uids are scored once.",
    )
    parser.add_argument("predictions", type=Path, help="predictions JSONL ({uid, pred, change_caption})")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (n, BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, S*m, change_accuracy)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="also write the full report (overall + change / no-change subsets) to this JSON file",
    )


def run(args: argparse.Namespace) -> int:
    from ..caption_metrics import MeteorUnavailable, evaluate_predictions, format_report
    from ..records import RecordError, read_predictions

    try:
        predictions = read_predictions(args.predictions)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = evaluate_predictions(predictions)
        for warning in caught:
            if issubclass(warning.category, UserWarning):
                print(f"warning: {warning.message}", file=sys.stderr)
    except (RecordError, MeteorUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.report is not None:
        full = {
            "overall": report.overall,
            "change": report.change,
            "no_change": report.no_change,
            "duplicates": report.duplicates,
        }
        args.report.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        print(format_report(report))
    return 0
