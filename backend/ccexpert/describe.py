"""Headless ``describe``: caption every chip of a before/after raster pair into a GeoPackage.

Same grid, fields, alignment, nodata rule and shared 8-bit stretch as the QGIS plugin (both use
``ccexpert_changes.core``). Chips are streamed: the grid is iterated lazily, each chip is one windowed read
per date, and results are appended batch by batch, so memory stays flat whatever the raster size and an
interrupted run resumes where it stopped.

Order of a run (issue 16): options and the output path are checked first (nothing is opened, nothing contacted),
then the rasters are opened and sampled for readability, then the backend is asked for its info and to accept the
API key (``GET /v1/auth/check``), then the grid, AOI and stretch are laid out and, for ``--resume``, the
output's fingerprint (run metadata) compared. Only then is anything written: a fresh or ``--overwrite`` run is
staged in a temporary file that replaces the output at its first captioned batch (see ``gpkg_output``), so an
input or a previous output is never lost to a run that fails.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from ccexpert_changes.core.context import check_context
from ccexpert_changes.core.driver import (
    MAX_IN_FLIGHT,
    Hooks,
    RunOptions,
    RunPlan,
    drive,
    model_label,
    settings_from_info,
)
from ccexpert_changes.core.fields import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SKIPPED_NODATA,
    run_metadata,
    same_imagery,
    source_identity,
)
from ccexpert_changes.core.grid import DEFAULT_CHIP_SIZE, Chip, ChipGrid
from ccexpert_changes.core.gsd import gsd_warning
from ccexpert_changes.core.output_contract import layer_counts
from ccexpert_changes.core.output_lock import OutputLock
from ccexpert_changes.core.retry import waiting_text
from ccexpert_changes.core.run_loop import SEND, Item, RunStats
from ccexpert_changes.core.stretch import nodata_fraction
from PIL import Image
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from shapely import prepared
from shapely.geometry import box, shape
from shapely.ops import unary_union

from .aoi import aoi_wkt, check_finite, clip_to_footprint, polygonal, repair
from .captioners import (  # the captioners are part of describe's API (tests, the command, benchmarks)
    Captioner,
    DescribeError,
    EngineCaptioner,
    ServiceCaptioner,
)
from .gpkg_output import OutputCreateError, TileWriter, check_output_path
from .raster_io import RasterPair, RasterReadError, crs_string

log = logging.getLogger(__name__)

MIN_CHIP_SIZE, MAX_CHIP_SIZE = 16, 8192  # grid chip sizes in raster pixels (chips are resized to the model's input)
CANCEL_GRACE_S = 5.0  # after a first Ctrl-C, answers arriving within this time are still written
WRITE_ERRORS = (OSError, RuntimeError, sqlite3.Error)  # a full disk: OSError(ENOSPC) or GDAL's RuntimeError


@dataclass
class DescribeOptions(RunOptions):
    """describe's inputs, and the run options it shares with the plugin (``core.driver.RunOptions``, keywords)."""

    before: str
    after: str
    output: str
    aoi: str | None = None
    aoi_layer: str | None = None
    bands: str | None = None
    nodata: float | None = None  # used for a raster that declares none
    max_new_tokens: int | None = None
    overwrite: bool = False
    progress: bool = True


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


def load_aoi(path: str, layer: str | None, target_crs, within: tuple[float, float, float, float] | None = None) -> Any:
    """Union of the AOI polygons, transformed to ``target_crs``; ValueError naming what is wrong. Invalid polygons
    are repaired keeping their whole area and coordinates that are not numbers refused (``ccexpert.aoi``, the
    plugin's rule); ``within`` (bounds in ``target_crs``: the rasters' footprint) clips the AOI before it is
    projected, so an AOI far larger than the rasters (the whole globe in degrees) still projects."""
    import fiona

    try:
        with fiona.open(path, layer=layer) as src:
            crs_wkt = src.crs_wkt
            geoms = [(i, shape(f.geometry)) for i, f in enumerate(src, 1) if f.geometry is not None]
    except (fiona.errors.DriverError, fiona.errors.FionaValueError, ValueError) as exc:
        raise ValueError(f"AOI {path}: cannot read ({exc})") from None
    polys = [(i, g) for i, g in geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not polys:
        raise ValueError(f"AOI {path}: no polygon features (found {len(geoms)} geometries)")
    if not crs_wkt:
        raise ValueError(f"AOI {path}: layer has no CRS")
    for i, g in polys:
        check_finite(g, f"AOI {path}, feature {i},")
    aoi = unary_union([repair(g, f"AOI {path}, feature {i},") for i, g in polys])
    src_crs, dst_crs = ProjCRS.from_user_input(crs_wkt), ProjCRS.from_user_input(target_crs.to_wkt())
    if within is not None:
        aoi = clip_to_footprint(aoi, src_crs, within, dst_crs)
        if aoi.is_empty:
            raise ValueError(f"AOI {path} does not overlap the area covered by both rasters")
    if src_crs != dst_crs:
        # densify first so long straight edges follow the projection's curvature
        minx, miny, maxx, maxy = aoi.bounds
        aoi = aoi.segmentize(max(maxx - minx, maxy - miny) / 64 or 1.0)
        transformer = Transformer.from_crs(src_crs, dst_crs, always_xy=True)
        aoi = shapely.transform(aoi, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
        log.info("AOI transformed from %s to %s", src_crs.to_string(), dst_crs.to_string())
        check_finite(aoi, f"AOI {path} projected into {dst_crs.to_string()}")
    if not aoi.is_valid:
        aoi = polygonal(shapely.make_valid(aoi, method="linework"))
    return aoi


def _to_rgb(array: np.ndarray, size: int) -> np.ndarray:
    """(3, h, w) uint8 -> HxWx3, resized to the model's chip size when the grid uses another one."""
    rgb = np.ascontiguousarray(array.transpose(1, 2, 0))
    if rgb.shape[0] != size:
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return rgb


def check_options(options: DescribeOptions) -> None:
    """ValueError for options that cannot work, before anything is opened; the context note is left stripped."""
    if not 0.0 <= options.max_nodata <= 1.0:
        raise ValueError(f"--max-nodata must be in [0, 1], got {options.max_nodata}")
    if options.batch_size is not None and options.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    if options.chip_size is not None and not MIN_CHIP_SIZE <= options.chip_size <= MAX_CHIP_SIZE:
        raise ValueError(
            f"--chip-size must be from {MIN_CHIP_SIZE} to {MAX_CHIP_SIZE} pixels (chips are resized to "
            f"the model's input; leave it out for the model's own chip size), got {options.chip_size}"
        )
    if options.in_flight is not None and not 1 <= options.in_flight <= MAX_IN_FLIGHT:
        raise ValueError(f"--in-flight must be from 1 to {MAX_IN_FLIGHT}, got {options.in_flight}")
    if options.overlap < 0:
        raise ValueError(f"--overlap must be >= 0, got {options.overlap}")
    if options.force and not options.resume:
        raise ValueError("--force only goes with --resume (append to an output made from other inputs)")
    try:  # checked once: the stripped note (or None) from here on
        options.context_note = check_context(options.context_note)
    except ValueError as exc:
        raise ValueError(f"--context: {exc}") from None


def describe(options: DescribeOptions, captioner: Captioner) -> DescribeSummary:
    """Run the whole job; returns counts. Raises ValueError for bad inputs (before any tile is written) and
    DescribeError when the backend fails, refuses the key or the output cannot be written (finished tiles are
    kept)."""
    check_options(options)
    if same_imagery(options.before, options.after):
        raise ValueError(
            f"before and after are the same raster ({options.before}): nothing can have changed; give "
            "the earlier image first and the later one second"
        )
    check_output_path(
        options.output,
        {"before raster": options.before, "after raster": options.after, "AOI": options.aoi},
        resume=options.resume,
        overwrite=options.overwrite,
    )
    summary = DescribeSummary(run_id=uuid.uuid4().hex[:12])
    with RasterPair(options.before, options.after, bands=options.bands, nodata=options.nodata) as rasters:
        rasters.check_readable()
        info = captioner.info()  # after the rasters are known to be usable
        captioner.check_access()
        model_chip = int(info.get("chip_size", DEFAULT_CHIP_SIZE))
        chip_size = options.chip_size if options.chip_size is not None else model_chip
        summary.resampled = rasters.resampled
        grid = ChipGrid(rasters.grid, chip_size, options.overlap)
        summary.grid = grid
        _warn_gsd(rasters, chip_size, model_chip, info)
        area = box(*rasters.overlap)
        if options.aoi:
            area = load_aoi(options.aoi, options.aoi_layer, rasters.before.crs, rasters.overlap).intersection(area)
            if area.is_empty or area.area == 0:
                raise ValueError(f"AOI {options.aoi} does not overlap the area covered by both rasters")
        bounds = area.bounds
        upper = grid.count(bounds)
        if upper > options.max_chips:
            raise ValueError(
                f"{upper} chips over the AOI is over --max-chips {options.max_chips}: use a smaller "
                "AOI or raise the limit"
            )
        area_prepared = prepared.prep(area)

        def keep(chip: Chip) -> bool:  # chips touching the AOI, as the plugin keeps them
            return area_prepared.intersects(box(*chip.bounds))

        summary.total = grid.count(bounds, keep)
        stretch = rasters.stretch(bounds)
        log.info(
            "%d chips of %d px (stride %d) in %s; stretch %s",
            summary.total,
            chip_size,
            grid.stride,
            crs_string(rasters.before.crs),
            "uint8 passthrough" if stretch.passthrough else stretch.to_dict(),
        )
        model_id = model_label(info)
        metadata = run_metadata(
            str(Path(options.before).resolve()),
            str(Path(options.after).resolve()),
            options.bands or "1,2,3",
            options.nodata,
            chip_size,
            options.overlap,
            grid.grid_hash,
            stretch.to_dict(),
            model=model_id,
            before_source=source_identity(options.before),
            after_source=source_identity(options.after),
            aoi=aoi_wkt(area, abs(rasters.before.transform.a)) if options.aoi else None,
            context=options.context_note,
        )
        prepare = _chip_reader(rasters, stretch, model_chip, options.max_nodata, captioner.payload)
        lock = OutputLock(options.output)
        try:
            lock.acquire()  # OutputBusy (a ValueError) when another run writes this output
        except OSError as exc:
            raise _cannot_create(options.output, exc) from None
        try:
            crs_wkt = rasters.before.crs.to_wkt()
            _write_run(
                options,
                captioner,
                info,
                summary,
                (crs_wkt, grid.grid_hash, metadata),
                prepare,
                grid.chips(bounds, keep),
            )
        finally:
            lock.release()
    return summary


def _write_run(
    options: DescribeOptions,
    captioner: Captioner,
    info: dict,
    summary: DescribeSummary,
    layer: tuple[str, str, dict],
    prepare: Callable[[Chip], Item],
    chips: Iterable[Chip],
) -> None:
    """Open the output (``layer``: CRS, grid hash, run metadata), run the chips into it, keep or drop it by the one
    rule, and count its rows again: a run reports success only for an output that holds what it wrote."""
    crs_wkt, grid_hash, metadata = layer
    try:
        writer = TileWriter(
            options.output,
            crs_wkt,
            grid_hash,
            metadata,
            resume=options.resume,
            overwrite=options.overwrite,
            force=options.force,
        )
    except WRITE_ERRORS as exc:
        raise _cannot_create(options.output, exc) from None
    if writer.differences:
        log.warning(
            "--force: resuming %s although it was made by another run: %s",
            options.output,
            "; ".join(writer.differences),
        )
    if writer.redone:
        log.info("resume: %d unfinished tile(s) (error/skipped) will be done again", writer.redone)
    common = {"model": str(info.get("model_name", "")), "backend": captioner.name, "run_id": summary.run_id}
    settings = settings_from_info(info, options.batch_size, options.in_flight or captioner.max_in_flight(info), common)
    if options.batch_size and settings.batch_size < options.batch_size:
        log.info("%d chip pairs per request: the backend's max_batch", settings.batch_size)
    if settings.in_flight > 1:
        log.info(
            "%d requests in flight at once (%s)",
            settings.in_flight,
            "--in-flight" if options.in_flight else "the backend's advertised capacity",
        )
    settings.cancel_grace_s = CANCEL_GRACE_S
    if options.max_new_tokens is not None:
        captioner.max_new_tokens = options.max_new_tokens
    captioner.context = options.context_note
    if captioner.context is not None and not info.get("uses_context", False):
        log.info("--context is stored with the run; model %s does not read it (its prompt is fixed)", model_label(info))
    progress = _progress(summary.total, options.progress)
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
            result = drive(RunPlan(chips, summary.total), prepare, captioner, writer, settings, hooks)
    finally:
        progress(None)
        captioner.on_retry(None)  # no reference from the client back to the finished loop
    _fill(summary, result.stats)
    if not result.held and writer.replaces:
        summary.left_as_it_was = True
        log.warning("the run captioned nothing: %s was left as it was", options.output)
    if result.held:
        try:
            counts: dict[str, int] | None = layer_counts(options.output)  # after a --resume: the layer's (issue 25)
            why = ""
        except (OSError, sqlite3.Error) as exc:
            counts, why = None, _reason(exc)
        _finish_layer(options, info, summary, captioner.name, counts)
        _recount(options.output, summary, counts, why)
    if result.aborted is not None:
        exc = result.aborted
        if exc.kind == "canceled":
            raise KeyboardInterrupt
        message = str(exc)
        if exc.kind == "write":
            message += " (the tiles written before are kept; fix it and run again with --resume)"
        raise DescribeError(message, summary, refused_key=exc.kind == "refused_key")


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


def _recount(output: str, summary: DescribeSummary, counts: dict[str, int] | None, why: str) -> None:
    """The rows in the output (``counts``: ``layer_counts`` at the end, None when unreadable for ``why``) must be
    the tiles kept from before plus this run's: anything else means another process replaced or changed the file
    while this run wrote it, and the run must not report success."""
    expected = summary.skipped_done + sum(summary.counts.values())
    found = counts["rows"] if counts is not None else -1
    if found != expected:
        summary.output_mismatch = (
            f"{output} holds {found if found >= 0 else 'no readable'} rows{f' ({why})' if why else ''} where this "
            f"run left {expected}: another process replaced or changed it while this run wrote it"
        )
        summary.note_error(summary.output_mismatch)
        log.error("%s", summary.output_mismatch)


def _warn_gsd(rasters: RasterPair, chip_size: int, model_chip: int, info: dict) -> None:
    """A warning when the chips give the model a very different pixel size than its model card's ``gsd_m``."""
    crs = rasters.before.crs
    if crs is None or not crs.is_projected:
        return
    pixel_m = abs(rasters.before.transform.a) * (crs.linear_units_factor[1] if crs.linear_units_factor else 1.0)
    text = gsd_warning(pixel_m, chip_size, model_chip, info.get("gsd_m"))
    if text:
        log.warning("%s", text)


def _finish_layer(
    options: DescribeOptions, info: dict, summary: DescribeSummary, backend: str, counts: dict[str, int] | None
) -> None:
    """The layer's style and abstract travel with it (``layer_styles``, ``gpkg_contents``): the output opens styled
    in QGIS wherever it is opened and says which model made it (the demo model flagged). ``counts``: the layer's
    (None when it could not be counted: this run's). A failure here costs the styling only, never the captions."""
    from ccexpert_changes.core.layer_metadata import finish_output

    if counts is None:
        counts = {
            "captioned": summary.counts[STATUS_OK] + summary.skipped_done,
            "changed": summary.changed,
            "errors": summary.counts[STATUS_ERROR],
            "skipped_nodata": summary.counts[STATUS_SKIPPED_NODATA],
        }
    try:
        finish_output(
            options.output,
            info,
            counts,
            before=str(Path(options.before).resolve()),
            after=str(Path(options.after).resolve()),
            backend=backend,
        )
    except (OSError, ValueError, sqlite3.Error) as exc:
        log.warning(
            "%s: the layer style or abstract could not be stored (%s); the captions are complete", options.output, exc
        )


def _cannot_create(output: str, exc: BaseException) -> DescribeError:
    """One line for an output that could not even be created (nothing of this run is left behind)."""
    text = str(exc) if isinstance(exc, OutputCreateError) else f"cannot create {output}: {_reason(exc)}"
    return DescribeError(f"{text} (nothing was written: is the disk full or read-only?)", nothing_written=True)


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _chip_reader(
    rasters: RasterPair, stretch, model_chip: int, max_nodata: float, payload: Callable[[Any, Any], tuple[Any, int]]
) -> Callable[[Chip], Item]:
    """``prepare(chip)`` for the run loop: one windowed read per date, the nodata rule, the shared stretch, and the
    captioner's payload (PNGs for a backend, with their size on the wire: the byte budget is real)."""

    def prepare(chip: Chip) -> Item:
        try:
            b = rasters.before_reader.read(chip)
            a = rasters.after_reader.read(chip)
        except RasterReadError as exc:
            return Item(chip, STATUS_ERROR, error=str(exc))
        nb, na = nodata_fraction(b.valid), nodata_fraction(a.valid)
        if max(nb, na) > max_nodata:
            return Item(
                chip,
                STATUS_SKIPPED_NODATA,
                nodata_before=nb,
                nodata_after=na,
                error=f"nodata {max(nb, na):.0%} over max {max_nodata:.0%}",
            )
        pair, size = payload(
            _to_rgb(stretch.apply(b.array, b.valid), model_chip),
            _to_rgb(stretch.apply(a.array, a.valid), model_chip),
        )
        return Item(chip, SEND, payload=pair, size=size, nodata_before=nb, nodata_after=na)

    return prepare


def _fill(summary: DescribeSummary, stats: RunStats) -> None:
    """The loop's counts into the summary the command reports."""
    summary.skipped_done = stats.resumed
    summary.counts = {
        STATUS_OK: stats.captioned,
        STATUS_ERROR: stats.errors,
        STATUS_SKIPPED_NODATA: stats.skipped_nodata,
    }
    summary.changed = stats.changed
    if stats.first_error:
        summary.note_error(stats.first_error)


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
]
