"""What a ``ccexpert describe`` run will do, decided before anything is written: the options checked and read once
into a :class:`DescribePlan` (as the plugin's ``planning.DescribeParameters.read`` and ``make_plan`` do).

:func:`make_plan` keeps the order of a run's checks (issue 16; issue 26 made each module one visit): the options and
the output path first (nothing is opened, nothing contacted), then Before = After is refused and the two sources
identified for the fingerprint, then the rasters are opened, sampled for readability and cut to the described area,
over which the stretch is sampled (``raster_io.open_pair``), then the backend is asked for its info and to accept the
API key, then the grid is laid over the area (a raster smaller than a chip refused) and its chips counted, and the
run metadata (the output's fingerprint) computed. A failed check raises ValueError (or the captioner's DescribeError)
with the rasters closed again; the run (``describe.describe``) works from the plan, never from the options again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ccexpert_changes.core.context import check_context
from ccexpert_changes.core.driver import MAX_IN_FLIGHT, RunOptions, model_label
from ccexpert_changes.core.fields import STATUS_ERROR, STATUS_SKIPPED_NODATA, run_metadata
from ccexpert_changes.core.grid import DEFAULT_CHIP_SIZE, Chip, ChipGrid
from ccexpert_changes.core.gsd import gsd_warning
from ccexpert_changes.core.run_loop import SEND, Item
from ccexpert_changes.core.sources import same_imagery, source_identity
from ccexpert_changes.core.stretch import Stretch, nodata_fraction
from PIL import Image
from shapely import prepared
from shapely.geometry import box

from .captioners import Captioner
from .gpkg_output import check_output_path
from .raster_io import RasterPair, RasterReadError, open_pair

log = logging.getLogger("ccexpert.describe")  # the plan's lines are describe's (tests and users filter on it)

MIN_CHIP_SIZE, MAX_CHIP_SIZE = 16, 8192  # grid chip sizes in raster pixels (chips are resized to the model's input)


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


@dataclass
class DescribePlan:
    """A run that passed every check: the open rasters (closed on exit: use the plan as a context manager), the
    chips over the described area, the stretch, the backend's info, the output's layer, and the run options."""

    rasters: RasterPair
    grid: ChipGrid
    chips: Iterator[Chip]  # the kept chips in grid order, streamed
    total: int  # how many ``chips`` holds
    stretch: Stretch
    model_chip: int  # the model's input size: every chip is resized to it
    info: dict  # the backend's ``/v1/info``
    sources: tuple[str, str]  # the before and after rasters, resolved (the layer's abstract names them)
    crs_wkt: str  # the output layer's CRS: the before raster's
    metadata: dict  # the run metadata, the output's fingerprint (``core.fields.run_metadata``)
    run: DescribeOptions  # as checked: the output and how to write it, batch, in flight, the note, progress

    def __enter__(self) -> DescribePlan:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.rasters.close()

    def chip_reader(self, payload: Callable[[Any, Any], tuple[Any, int]]) -> Callable[[Chip], Item]:
        """``prepare(chip)`` for the run loop: one windowed read per date, the nodata rule, the shared stretch,
        each date resized to the model's input, and the captioner's ``payload`` (PNGs for a backend, with their
        size on the wire: the byte budget is real)."""
        rasters, stretch, size, max_nodata = self.rasters, self.stretch, self.model_chip, self.run.max_nodata

        def rgb(array: np.ndarray, valid: np.ndarray) -> np.ndarray:
            """(3, h, w) -> the stretched HxWx3 uint8 the model reads, resized when the grid uses another size."""
            image = np.ascontiguousarray(stretch.apply(array, valid).transpose(1, 2, 0))
            if image.shape[0] != size:
                image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
            return image

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
            pair, nbytes = payload(rgb(b.array, b.valid), rgb(a.array, a.valid))
            return Item(chip, SEND, payload=pair, size=nbytes, nodata_before=nb, nodata_after=na)

        return prepare


def make_plan(options: DescribeOptions, captioner: Captioner) -> DescribePlan:
    """Check ``options`` and lay the run out, in the order of a run's checks (module docstring); ValueError for bad
    inputs, the captioner's DescribeError for a backend that fails or refuses the key. Nothing is written."""
    check_options(options)
    check_output_path(
        options.output,
        {"before raster": options.before, "after raster": options.after, "AOI": options.aoi},
        resume=options.resume,
        overwrite=options.overwrite,
    )
    if same_imagery(options.before, options.after):
        raise ValueError(
            f"before and after are the same raster ({options.before}): nothing can have changed; give "
            "the earlier image first and the later one second"
        )
    identities = source_identity(options.before), source_identity(options.after)  # for the fingerprint, read once
    rasters, area = open_pair(
        options.before,
        options.after,
        bands=options.bands,
        nodata=options.nodata,
        aoi=options.aoi,
        aoi_layer=options.aoi_layer,
    )
    try:
        info = captioner.info()  # once the imagery is known to be usable
        captioner.check_access()
        model_chip = int(info.get("chip_size", DEFAULT_CHIP_SIZE))
        chip_size = options.chip_size if options.chip_size is not None else model_chip
        crs, pixel = rasters.before.crs, abs(rasters.before.transform.a)
        if crs is not None and crs.is_projected:  # a warning when the model sees another pixel size than its card's
            text = gsd_warning(
                pixel * (crs.linear_units_factor[1] if crs.linear_units_factor else 1.0),
                chip_size,
                model_chip,
                info.get("gsd_m"),
            )
            if text:
                log.warning("%s", text)
        area_prepared = prepared.prep(area.geometry)

        def keep(chip: Chip) -> bool:  # chips touching the AOI, as the plugin keeps them
            return area_prepared.intersects(box(*chip.bounds))

        grid = ChipGrid(rasters.grid, chip_size, options.overlap)  # a raster smaller than one chip is refused
        upper = grid.count(area.bounds)  # O(1): a huge AOI is refused before the chips are counted one by one
        if upper > options.max_chips:
            raise ValueError(
                f"{upper} chips over the AOI is over --max-chips {options.max_chips}: use a smaller "
                "AOI or raise the limit"
            )
        total, chips = grid.count(area.bounds, keep), grid.chips(area.bounds, keep)  # chips: streamed by the run
        log.info(
            "%d chips of %d px (stride %d) in %s; stretch %s",
            total,
            chip_size,
            grid.stride,
            rasters.grid.crs,
            "uint8 passthrough" if area.stretch.passthrough else area.stretch.to_dict(),
        )
        sources = (str(Path(options.before).resolve()), str(Path(options.after).resolve()))
        metadata = run_metadata(
            *sources,
            options.bands or "1,2,3",
            options.nodata,
            chip_size,
            options.overlap,
            grid.grid_hash,
            area.stretch.to_dict(),
            model=model_label(info),
            before_source=identities[0],
            after_source=identities[1],
            aoi=area.wkt,
            context=options.context_note,
        )
        return DescribePlan(
            rasters,
            grid,
            chips,
            total,
            area.stretch,
            model_chip,
            info,
            sources,
            crs.to_wkt(),
            metadata,
            options,
        )
    except BaseException:
        rasters.close()
        raise


__all__ = ["DescribeOptions", "DescribePlan", "MAX_CHIP_SIZE", "MIN_CHIP_SIZE", "check_options", "make_plan"]
