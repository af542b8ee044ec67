"""Headless ``describe``: caption every chip of a before/after raster pair into a GeoPackage.

Same grid, fields, alignment, nodata rule and shared 8-bit stretch as the QGIS plugin (both use
``ccexpert_changes.core``). Chips are streamed: the grid is iterated lazily, each chip is one windowed read
per date, and results are appended batch by batch, so memory stays flat whatever the raster size and an
interrupted run resumes where it stopped.

A run is two steps, as in the plugin (issue 26): the options are checked and read once into a plan
(``describe_plan.make_plan``: options and output path, then the sources, then the rasters over the described
area with their stretch, then the backend's info and key, then the grid and the run metadata; see there for the
order), then the plan is run.
Only then is anything written: a fresh or ``--overwrite`` run is staged in a temporary file that replaces the
output at its first captioned batch (see ``gpkg_output``), so an input or a previous output is never lost to a run
that fails.

The chips go through ``ccexpert_changes.core.driver.drive`` (the same driver and loop as the QGIS plugin): batches
capped at the backend's ``max_batch`` and ``max_body_bytes`` (PNGs are encoded in ``prepare``, so their size is
known), up to ``in_flight`` requests at once (default: the capacity ``/v1/info`` advertises), rows written in grid
order, exactly once, pair-by-pair retry of a refused batch, smaller batches when requests get slow. One run per
output (``core.output_lock``); the output's rows are counted again before success is reported. Ctrl-C: see
:class:`Interrupts`.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ccexpert_changes.core.driver import Hooks, RunPlan, drive, model_label, settings_from_info
from ccexpert_changes.core.fields import STATUS_ERROR, STATUS_OK, STATUS_SKIPPED_NODATA
from ccexpert_changes.core.grid import ChipGrid
from ccexpert_changes.core.output_contract import layer_counts
from ccexpert_changes.core.output_lock import OutputLock
from ccexpert_changes.core.retry import waiting_text
from ccexpert_changes.core.run_loop import RunStats

from .aoi import load_aoi
from .captioners import (  # the captioners are part of describe's API (tests, the command, benchmarks)
    Captioner,
    DescribeError,
    EngineCaptioner,
    ServiceCaptioner,
)
from .describe_plan import DescribeOptions, DescribePlan, check_options, make_plan
from .gpkg_output import OutputCreateError, TileWriter

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 5.0  # after a first Ctrl-C, answers arriving within this time are still written
WRITE_ERRORS = (OSError, RuntimeError, sqlite3.Error)  # a full disk: OSError(ENOSPC) or GDAL's RuntimeError


@dataclass
class DescribeSummary:
    total: int = 0
    skipped_done: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {STATUS_OK: 0, STATUS_ERROR: 0, STATUS_SKIPPED_NODATA: 0})
    changed: int = 0
    resampled: bool = False
    run_id: str = ""
    first_error: str | None = None  # the message of the first tile that failed in this run
    left_as_it_was: bool = False  # an --overwrite run that captioned nothing: the previous output was kept
    output_mismatch: str | None = None  # the output's rows, counted at the end, are not what this run left
    grid: ChipGrid | None = None  # the run's chip grid (the change-areas layer reads the chips' overlap from it)

    @property
    def not_attempted(self) -> int:
        """Chips the run never reached (it stopped early)."""
        return max(0, self.total - self.skipped_done - sum(self.counts.values()))

    @property
    def failed(self) -> int:
        return self.counts[STATUS_ERROR] + self.not_attempted + int(self.output_mismatch is not None)

    def note_error(self, message: str) -> None:
        if self.first_error is None:
            self.first_error = message


def describe(options: DescribeOptions, captioner: Captioner) -> DescribeSummary:
    """Run the whole job; returns counts. Raises ValueError for bad inputs (before any tile is written) and
    DescribeError when the backend fails, refuses the key or the output cannot be written (finished tiles are
    kept)."""
    with make_plan(options, captioner) as plan:  # every check; the rasters stay open for the run
        summary = DescribeSummary(
            total=plan.total, resampled=plan.rasters.resampled, run_id=uuid.uuid4().hex[:12], grid=plan.grid
        )
        lock = OutputLock(plan.run.output)
        try:
            lock.acquire()  # OutputBusy (a ValueError) when another run writes this output
        except OSError as exc:
            raise _cannot_create(plan.run.output, exc) from None
        try:
            _write_run(plan, captioner, summary)
        finally:
            lock.release()
    return summary


def _write_run(plan: DescribePlan, captioner: Captioner, summary: DescribeSummary) -> None:
    """Open the output, run the plan's chips into it, keep or drop it by the one rule, and count its rows again: a
    run reports success only for an output that holds what it wrote."""
    run, info = plan.run, plan.info
    try:
        writer = TileWriter(
            run.output,
            plan.crs_wkt,
            plan.grid.grid_hash,
            plan.metadata,
            resume=run.resume,
            overwrite=run.overwrite,
            force=run.force,
        )
    except WRITE_ERRORS as exc:
        raise _cannot_create(run.output, exc) from None
    if writer.differences:
        log.warning(
            "--force: resuming %s although it was made by another run: %s", run.output, "; ".join(writer.differences)
        )
    if writer.redone:
        log.info("resume: %d unfinished tile(s) (error/skipped) will be done again", writer.redone)
    common = {"model": str(info.get("model_name", "")), "backend": captioner.name, "run_id": summary.run_id}
    settings = settings_from_info(info, run.batch_size, run.in_flight or captioner.max_in_flight(info), common)
    if run.batch_size and settings.batch_size < run.batch_size:
        log.info("%d chip pairs per request: the backend's max_batch", settings.batch_size)
    if settings.in_flight > 1:
        log.info(
            "%d requests in flight at once (%s)",
            settings.in_flight,
            "--in-flight" if run.in_flight else "the backend's advertised capacity",
        )
    settings.cancel_grace_s = CANCEL_GRACE_S
    if run.max_new_tokens is not None:
        captioner.max_new_tokens = run.max_new_tokens
    captioner.context = run.context_note
    if captioner.context is not None and not info.get("uses_context", False):
        log.info("--context is stored with the run; model %s does not read it (its prompt is fixed)", model_label(info))
    progress = _progress(summary.total, run.progress)
    interrupts = Interrupts()
    hooks = Hooks(
        on_progress=progress,
        on_notice=log.warning,
        on_tile_error=lambda tile_id, message: log.debug("tile %s: %s", tile_id, message),
        is_canceled=interrupts.requested.is_set,
        on_loop=lambda loop: captioner.on_retry(loop.waiting),  # an outage shows in the progress line
    )
    try:
        with interrupts:
            result = drive(
                RunPlan(plan.chips, plan.total), plan.chip_reader(captioner.payload), captioner, writer, settings, hooks
            )
    finally:
        progress(None)
        captioner.on_retry(None)  # no reference from the client back to the finished loop
    stats = result.stats  # the loop's counts into the summary the command reports
    summary.skipped_done, summary.changed = stats.resumed, stats.changed
    summary.counts = {
        STATUS_OK: stats.captioned,
        STATUS_ERROR: stats.errors,
        STATUS_SKIPPED_NODATA: stats.skipped_nodata,
    }
    if stats.first_error:
        summary.note_error(stats.first_error)
    if not result.held and writer.replaces:
        summary.left_as_it_was = True
        log.warning("the run captioned nothing: %s was left as it was", run.output)
    if result.held:
        _finish_output(plan, summary, captioner.name)
    aborted = result.aborted
    if aborted is not None:
        if aborted.kind == "canceled":
            raise KeyboardInterrupt
        message = str(aborted)
        if aborted.kind == "write":
            message += " (the tiles written before are kept; fix it and run again with --resume)"
        raise DescribeError(message, summary, refused_key=aborted.kind == "refused_key")


class Interrupts:
    """Ctrl-C during a run, in two steps (issue 24): the first stops sending and lets the answers that arrive within
    ``CANCEL_GRACE_S`` be written (then the run ends as interrupted, resumable); the second leaves at once (every
    written batch is a committed transaction, so the output stays valid). Only the main thread can take signals;
    elsewhere Ctrl-C is Python's default."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()
        log.warning(
            "interrupted: nothing more is sent; answers arriving in the next %.0f s are written (Ctrl-C again to "
            "leave at once)",
            CANCEL_GRACE_S,
        )

    def __exit__(self, *exc_info: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


def _finish_output(plan: DescribePlan, summary: DescribeSummary, backend: str) -> None:
    """What a run does to the output it holds, once the loop is done. The layer's style and abstract travel with it
    (``layer_styles``, ``gpkg_contents``): the output opens styled in QGIS wherever it is opened and says which model
    made it (the demo model flagged); a failure there costs the styling only, never the captions. Then its rows must
    be the tiles kept from before plus this run's: anything else means another process replaced or changed the file
    while this run wrote it, and the run must not report success."""
    from ccexpert_changes.core.layer_metadata import finish_output

    output, before, after = plan.run.output, *plan.sources
    try:
        counts: dict[str, int] | None = layer_counts(output)  # after a --resume: the layer's (issue 25)
        why = ""
    except (OSError, sqlite3.Error) as exc:
        counts, why = None, _reason(exc)
    shown = counts or {  # the layer's counts, or this run's when it could not be counted
        "captioned": summary.counts[STATUS_OK] + summary.skipped_done,
        "changed": summary.changed,
        "errors": summary.counts[STATUS_ERROR],
        "skipped_nodata": summary.counts[STATUS_SKIPPED_NODATA],
    }
    try:
        finish_output(output, plan.info, shown, before=before, after=after, backend=backend)
    except (OSError, ValueError, sqlite3.Error) as exc:
        log.warning("%s: the layer style or abstract could not be stored (%s); the captions are complete", output, exc)
    expected = summary.skipped_done + sum(summary.counts.values())
    found = counts["rows"] if counts is not None else -1
    if found != expected:
        summary.output_mismatch = (
            f"{output} holds {found if found >= 0 else 'no readable'} rows{f' ({why})' if why else ''} where this "
            f"run left {expected}: another process replaced or changed it while this run wrote it"
        )
        summary.note_error(summary.output_mismatch)
        log.error("%s", summary.output_mismatch)


def _cannot_create(output: str, exc: BaseException) -> DescribeError:
    """One line for an output that could not even be created (nothing of this run is left behind)."""
    text = str(exc) if isinstance(exc, OutputCreateError) else f"cannot create {output}: {_reason(exc)}"
    return DescribeError(f"{text} (nothing was written: is the disk full or read-only?)", nothing_written=True)


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _progress(total: int, enabled: bool) -> Callable[[RunStats | None], None]:
    """A tqdm bar fed by the run loop: chips done of total, pairs/s and time left."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit="chip", desc="describe", disable=not enabled)

    def step(stats: RunStats | None) -> None:
        if stats is None:
            bar.close()
            return
        bar.update(stats.done - bar.n)
        if stats.waiting is not None:
            bar.set_postfix_str(waiting_text(stats.waiting), refresh=True)
        else:
            bar.set_postfix_str(f"{stats.rate():.1f} pairs/s (last minute)", refresh=False)

    return step


__all__ = [
    "Captioner",
    "DescribeError",
    "DescribeOptions",
    "DescribeSummary",
    "EngineCaptioner",
    "ServiceCaptioner",
    "check_options",
    "describe",
    "load_aoi",
    "make_plan",
]
