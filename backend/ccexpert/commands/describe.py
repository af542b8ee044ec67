"""``ccexpert describe BEFORE AFTER -o OUT.gpkg``: caption every chip into a GeoPackage (no QGIS needed).

Exit codes: 0 every chip captioned or skipped by rule (nodata), 2 bad input or options, or an API key the backend
refuses (nothing written), 3 some chips failed or were not reached (the captioned ones are kept: run again with
--resume), 4 no chip could be captioned (backend unreachable or failing...), 130 interrupted (Ctrl-C: the first
stops sending and writes the answers that arrive within 5 s, the second leaves at once; either way the output is
valid and --resume continues it). The last line gives the counts and the first error.

Nothing is deleted or replaced before every check passed (inputs readable, AOI, backend reachable and the key
accepted); an output that is one of the inputs is refused. --overwrite replaces the old output only once the new
run captions its first tile. --resume checks that the output was made from the same rasters, bands, nodata, grid,
stretch and model, and refuses otherwise naming what differs; --resume --force appends anyway. Backend requests are
retried (connection errors, timeouts, 429, 5xx) with a growing, jittered backoff that honours Retry-After, for at
most --retry-budget seconds per request.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys

EXIT_OK, EXIT_BAD_INPUT, EXIT_SOME_FAILED, EXIT_NONE_CAPTIONED, EXIT_INTERRUPTED = 0, 2, 3, 4, 130


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "describe",
        help="caption every chip of a before/after raster pair into a GeoPackage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("before", help="before raster (defines the chip grid and the output CRS)")
    p.add_argument("after", help="after raster (resampled onto the before chips if its grid differs)")
    p.add_argument("-o", "--output", required=True, help="output GeoPackage (layer change_captions)")
    p.add_argument("--aoi", help="area of interest (GeoPackage, GeoJSON or any OGR vector, any CRS)")
    p.add_argument("--aoi-layer", help="layer of a multi-layer AOI file")
    p.add_argument("--backend", help="URL of a `ccexpert serve` backend; default: the model in this process")
    p.add_argument("--api-key-file", help="file holding the backend's API key (or set CCEXPERT_API_KEY)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue OUTPUT: skip tiles already ok (refused when OUTPUT was made from other inputs)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="with --resume: append even though OUTPUT was made from other inputs, bands, stretch or model",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUTPUT if it exists (the old file stays until this run captions its first tile)",
    )
    p.add_argument("--bands", help="R,G,B band numbers (1-based), default 1,2,3")
    p.add_argument("--chip-size", type=int, help="chip size in before pixels, 16 to 8192 (default: the model's, 384)")
    p.add_argument("--overlap", type=int, default=0, help="overlap between chips in pixels (default 0)")
    p.add_argument(
        "--max-nodata",
        type=float,
        default=0.5,
        help="chips with a larger nodata share (either date, padding included) are skipped (default 0.5)",
    )
    p.add_argument("--nodata", type=float, help="nodata value for a raster that declares none (e.g. 0)")
    p.add_argument("--batch-size", type=int, default=8, help="pairs per request / engine call (default 8)")
    p.add_argument(
        "--in-flight",
        type=int,
        metavar="N",
        help="requests kept at the backend at once, 1 to 16 (default: the capacity the backend "
        "advertises in /v1/info, e.g. its Ray Serve replicas; 1 for the model in this process)",
    )
    p.add_argument("--max-new-tokens", type=int, help="caption length limit (default: the model's)")
    p.add_argument(
        "--context",
        metavar="TEXT",
        help="a note on the run, at most 300 characters on one line (e.g. 'after the May 2011 tornado'): stored "
        "in the run metadata and shown in the report; general VLMs read it before their prompt, CCExpert ignores it",
    )
    p.add_argument("--max-chips", type=int, default=100_000, help="refuse runs over this many chips")
    p.add_argument("--model", help="checkpoint folder for the in-process model (default: the demo model)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--timeout", type=float, default=300.0, help="backend read timeout in seconds")
    p.add_argument(
        "--retry-budget",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="retry a failing backend request (429, 5xx, connection errors, timeouts) for at most this "
        "long, with growing jittered waits that honour Retry-After (default 300)",
    )
    p.add_argument("--retries", type=int, help="also stop after this many retries (default: no count limit)")
    p.add_argument(
        "--areas",
        action="store_true",
        help="also write layer change_areas: neighbouring changed tiles of one kind of change dissolved into one area",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _api_key(path: str | None) -> str | None:
    """The key from ``path`` (first line), refused like ssh refuses a private key when group or others may read or
    write the file; else ``CCEXPERT_API_KEY``."""
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
                if os.name == "posix" and mode & 0o077:
                    raise ValueError(
                        f"--api-key-file {path}: permissions {mode:04o} are too open (group or others "
                        f"may read or write the key); run: chmod 600 {path}"
                    )
                return f.readline().strip() or None
        except OSError as exc:
            raise ValueError(f"--api-key-file {path}: {exc.strerror or exc}") from None
    return os.environ.get("CCEXPERT_API_KEY") or None


def run(args: argparse.Namespace) -> int:
    from ccexpert.describe import (
        Captioner,
        DescribeError,
        DescribeOptions,
        EngineCaptioner,
        ServiceCaptioner,
        check_options,
        describe,
    )

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    options = DescribeOptions(
        before=args.before,
        after=args.after,
        output=args.output,
        aoi=args.aoi,
        aoi_layer=args.aoi_layer,
        bands=args.bands,
        chip_size=args.chip_size,
        overlap=args.overlap,
        max_nodata=args.max_nodata,
        nodata=args.nodata,
        batch_size=args.batch_size,
        in_flight=args.in_flight,
        max_new_tokens=args.max_new_tokens,
        context_note=args.context,
        max_chips=args.max_chips,
        resume=args.resume,
        overwrite=args.overwrite,
        force=args.force,
        progress=not args.quiet,
    )
    try:
        check_options(options)  # before the model or the backend: bad options cost nothing
        captioner: Captioner
        if args.retry_budget <= 0 or (args.retries is not None and args.retries < 0):
            raise ValueError("--retry-budget must be > 0 seconds and --retries >= 0")
        if args.backend:
            from ccexpert.client import CCExpertClient

            client = CCExpertClient(
                args.backend,
                _api_key(args.api_key_file),
                read_timeout=args.timeout,
                retries=args.retries,
                retry_budget=args.retry_budget,
            )
            captioner = ServiceCaptioner(client)
        else:
            from ccexpert.engine import CaptionEngine

            captioner = EngineCaptioner(
                lambda: CaptionEngine.from_pretrained(args.model, device=args.device, dtype=args.dtype)
            )
        summary = describe(options, captioner)
    except KeyboardInterrupt:
        print(
            f"ccexpert describe: interrupted; the tiles written so far are kept in {args.output}: run again with "
            "--resume to finish",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except ValueError as exc:
        print(f"ccexpert describe: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DescribeError as exc:
        print(f"ccexpert describe: {exc}", file=sys.stderr)
        if exc.nothing_written:  # the output could not be created: the line above says it all
            return EXIT_NONE_CAPTIONED
        if exc.refused_key and (exc.summary is None or exc.summary.counts["ok"] == 0):
            print(f"ccexpert describe: nothing was captioned, nothing was written to {args.output}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if exc.summary is None:
            print(
                f"ccexpert describe: stopped before the first chip, nothing captioned; first error: {exc}",
                file=sys.stderr,
            )
            return EXIT_NONE_CAPTIONED
        summary = exc.summary
    code = _report(summary, args.output)
    if args.areas and not summary.left_as_it_was and os.path.exists(args.output):
        from ccexpert.area_layer import write_change_areas

        print(f"{write_change_areas(args.output, summary.grid)} change areas -> {args.output} (layer change_areas)")
    return code


def _report(summary, output: str) -> int:
    """Print the counts line (and the first error); the exit code they make."""
    c = summary.counts
    line = (
        f"{summary.total} chips: {c['ok']} captioned ({summary.changed} changed), {c['skipped_nodata']} skipped "
        f"(nodata), {c['error']} errors, {summary.not_attempted} not reached, {summary.skipped_done} already "
        f"done -> {output}"
    )
    if summary.failed == 0:
        print(line)
        return EXIT_OK
    print(line, file=sys.stderr)
    print(f"first error: {summary.first_error}", file=sys.stderr)
    if summary.output_mismatch and summary.output_mismatch != summary.first_error:
        print(summary.output_mismatch, file=sys.stderr)
    if summary.left_as_it_was:
        print(f"the run captioned nothing: {output} was left as it was; fix the problem and run again", file=sys.stderr)
    else:
        print(f"the captioned tiles are kept in {output}; fix the problem and run again with --resume", file=sys.stderr)
    return EXIT_NONE_CAPTIONED if c["ok"] + summary.skipped_done == 0 else EXIT_SOME_FAILED
