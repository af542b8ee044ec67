"""``ccexpert facts [CAPTION ...] [--file F]``: the change facts of captions, one JSON object per line, in input order.

Each line is ``{"caption": ..., "changed": bool, "facts": [{"object", "action", "count", "quantity", "where",
"word"}, ...]}`` (docs/ARCHITECTURE.md "Change facts"), from the same parser the plugin and ``ccexpert describe``
use for the output layer's fact fields. ``--file`` reads one caption per line (UTF-8; blank lines skipped); captions
given as arguments come first. ``-`` as the file reads standard input.
"""

from __future__ import annotations

import argparse
import json
import sys

from ccexpert_changes.core.facts import parse_caption

HELP = "change facts (object, action, count, where) of captions, one JSON line each"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "facts", help=HELP, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("captions", nargs="*", metavar="CAPTION", help="captions to parse")
    parser.add_argument("--file", help="a UTF-8 text file with one caption per line ('-' = standard input)")


def _read_lines(path: str) -> list[str]:
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as handle:
            data = handle.read()
    text = data.decode("utf-8-sig")  # a UnicodeDecodeError names the byte; run() turns it into the message
    return [line.strip() for line in text.splitlines() if line.strip()]


def run(args) -> int:
    captions = list(args.captions)
    if args.file is not None:
        try:
            captions.extend(_read_lines(args.file))
        except FileNotFoundError:
            print(f"ccexpert facts: error: no such file: {args.file}", file=sys.stderr)
            return 2
        except IsADirectoryError:
            print(f"ccexpert facts: error: {args.file} is a folder, not a text file", file=sys.stderr)
            return 2
        except UnicodeDecodeError as exc:
            print(
                f"ccexpert facts: error: {args.file} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                "save it as UTF-8",
                file=sys.stderr,
            )
            return 2
        except OSError as exc:
            print(f"ccexpert facts: error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        if not captions:
            print(f"ccexpert facts: error: {args.file} holds no caption (empty or blank lines only)", file=sys.stderr)
            return 2
    if not captions:
        print("ccexpert facts: error: give captions as arguments or --file F", file=sys.stderr)
        return 2
    for caption in captions:
        print(json.dumps(parse_caption(caption).to_dict(), ensure_ascii=False))
    return 0
