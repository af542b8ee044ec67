"""Headless ``describe``: caption every chip of a before/after raster pair into a GeoPackage.

Same grid, fields, alignment, nodata rule and shared 8-bit stretch as the QGIS plugin (both use
``ccexpert_changes.core``). Chips are streamed: the grid is iterated lazily, each chip is one windowed read
per date, and results are appended batch by batch, so memory stays flat whatever the raster size and an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from ccexpert_changes.core.fields import STATUS_ERROR, STATUS_OK, STATUS_SKIPPED_NODATA, make_record, run_metadata
from ccexpert_changes.core.grid import Chip, ChipGrid
from ccexpert_changes.core.stretch import nodata_fraction
from PIL import Image
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from shapely import prepared
from shapely.geometry import box, shape
from shapely.ops import unary_union

from .gpkg_output import TileWriter
from .raster_io import RasterPair, crs_string

log = logging.getLogger(__name__)


class DescribeError(Exception):
    """The run cannot go on (backend unreachable, wrong key...); finished tiles are kept for --resume.

    ``summary`` holds the counts up to that point (None when the run stopped before its first chip)."""

    def __init__(self, message: str, summary: DescribeSummary | None = None):
        super().__init__(message)
        self.summary = summary


@dataclass
class DescribeOptions:
    before: str
    after: str
    output: str
    aoi: str | None = None
    aoi_layer: str | None = None
    bands: str | None = None
    chip_size: int | None = None  # default: the model's chip size
    overlap: int = 0
    max_nodata: float = 0.5
    nodata: float | None = None  # used for a raster that declares none
    batch_size: int = 8
    max_new_tokens: int | None = None
    max_chips: int = 100_000
    resume: bool = False
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

    @property
    def not_attempted(self) -> int:
        """Chips the run never reached (it stopped early)."""
        return max(0, self.total - self.skipped_done - sum(self.counts.values()))

    @property
    def failed(self) -> int:
        return self.counts[STATUS_ERROR] + self.not_attempted

    def note_error(self, message: str) -> None:
        if self.first_error is None:
            self.first_error = message


class Captioner:
    """What describe needs from a model: ``info()`` and ``caption(ids, pairs) -> list[result dict | Exception]``."""

    name: str = "in-process"

    def info(self) -> dict:
        raise NotImplementedError

    def caption(self, ids: Sequence[str], pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                max_new_tokens: int | None) -> list[dict | Exception]:
        raise NotImplementedError


class EngineCaptioner(Captioner):
    """The model in this process (no --backend). ``engine`` may be a zero-argument loader, called on first
    use: inputs are checked before the slow model load."""

    def __init__(self, engine):
        self._engine = engine
        self.name = "in-process"

    @property
    def engine(self):
        if callable(self._engine) and not hasattr(self._engine, "caption"):
            self._engine = self._engine()
        return self._engine

    def info(self) -> dict:
        return self.engine.info()

    def caption(self, ids, pairs, max_new_tokens):
        try:
            results = self.engine.caption(list(pairs), max_new_tokens=max_new_tokens or 64)
        except ValueError as exc:  # a bad pair: caption one by one to isolate it
            if len(pairs) == 1:
                return [exc]
            return [self.caption([i], [p], max_new_tokens)[0] for i, p in zip(ids, pairs, strict=True)]
        return [{"caption": r.caption, "confidence": r.confidence, "changed": r.changed} for r in results]


class ServiceCaptioner(Captioner):
    """A ``ccexpert serve`` backend through :class:`ccexpert.client.CCExpertClient`."""

    def __init__(self, client):
        from .client import ChipPair

        self.client = client
        self.name = client.base_url
        self._pair = ChipPair

    def info(self) -> dict:
        from .client import ServiceError

        try:
            return self.client.info()
        except ServiceError as exc:
            raise DescribeError(f"backend {self.client.base_url} unreachable or incompatible: {exc}") from None

    def caption(self, ids, pairs, max_new_tokens):
        from .client import ServiceError

        items = [self._pair(i, b, a) for i, (b, a) in zip(ids, pairs, strict=True)]
        out: dict[str, dict | Exception] = {}
        while items:
            try:
                for r in self.client.caption(items, max_new_tokens=max_new_tokens):
                    out[r["id"]] = r
                items = []
            except ServiceError as exc:
                if exc.status is not None and 400 <= exc.status < 500 and exc.pair_id in {p.id for p in items}:
                    out[exc.pair_id] = exc  # this chip was refused: record it, send the others again
                    items = [p for p in items if p.id != exc.pair_id]
                    continue
                raise DescribeError(f"backend {self.client.base_url}: {exc}") from None
        return [out[i] for i in ids]


def load_aoi(path: str, layer: str | None, target_crs) -> Any:
    """Union of the AOI polygons, transformed to ``target_crs``; ValueError naming what is wrong."""
    import fiona

    try:
        with fiona.open(path, layer=layer) as src:
            crs_wkt = src.crs_wkt
            geoms = [shape(f.geometry) for f in src if f.geometry is not None]
    except (fiona.errors.DriverError, fiona.errors.FionaValueError, ValueError) as exc:
        raise ValueError(f"AOI {path}: cannot read ({exc})") from None
    polys = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not polys:
        raise ValueError(f"AOI {path}: no polygon features (found {len(geoms)} geometries)")
    if not crs_wkt:
        raise ValueError(f"AOI {path}: layer has no CRS")
    aoi = unary_union([g.buffer(0) if not g.is_valid else g for g in polys])
    src_crs, dst_crs = ProjCRS.from_user_input(crs_wkt), ProjCRS.from_user_input(target_crs.to_wkt())
    if src_crs != dst_crs:
        # densify first so long straight edges follow the projection's curvature
        minx, miny, maxx, maxy = aoi.bounds
        aoi = aoi.segmentize(max(maxx - minx, maxy - miny) / 64 or 1.0)
        transformer = Transformer.from_crs(src_crs, dst_crs, always_xy=True)
        aoi = shapely.transform(aoi, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
        log.info("AOI transformed from %s to %s", src_crs.to_string(), dst_crs.to_string())
    if not aoi.is_valid:
        aoi = aoi.buffer(0)
    return aoi


def _to_rgb(array: np.ndarray, size: int) -> np.ndarray:
    """(3, h, w) uint8 -> HxWx3, resized to the model's chip size when the grid uses another one."""
    rgb = np.ascontiguousarray(array.transpose(1, 2, 0))
    if rgb.shape[0] != size:
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return rgb


def describe(options: DescribeOptions, captioner: Captioner) -> DescribeSummary:
    """Run the whole job; returns counts. Raises ValueError for bad inputs (before any tile is written) and
    DescribeError when the backend fails mid-run (finished tiles are kept)."""
    if not 0.0 <= options.max_nodata <= 1.0:
        raise ValueError(f"--max-nodata must be in [0, 1], got {options.max_nodata}")
    if options.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    summary = DescribeSummary(run_id=uuid.uuid4().hex[:12])
    with RasterPair(options.before, options.after, bands=options.bands, nodata=options.nodata) as rasters:
        info = captioner.info()  # after the rasters are known to be usable
        model_chip = int(info.get("chip_size", 384))
        chip_size = options.chip_size or model_chip
        summary.resampled = rasters.resampled
        grid = ChipGrid(rasters.grid, chip_size, options.overlap)
        area = box(*rasters.overlap)
        if options.aoi:
            area = load_aoi(options.aoi, options.aoi_layer, rasters.before.crs).intersection(area)
            if area.is_empty or area.area == 0:
                raise ValueError(f"AOI {options.aoi} does not overlap the area covered by both rasters")
        bounds = area.bounds
        upper = grid.count(bounds)
        if upper > options.max_chips:
            raise ValueError(f"{upper} chips over the AOI is over --max-chips {options.max_chips}: use a smaller "
                             "AOI or raise the limit")
        area_prepared = prepared.prep(area)

        def keep(chip: Chip) -> bool:  # chips touching the AOI, as the plugin keeps them
            return area_prepared.intersects(box(*chip.bounds))

        summary.total = grid.count(bounds, keep)
        stretch = rasters.stretch(bounds)
        log.info("%d chips of %d px (stride %d) in %s; stretch %s", summary.total, chip_size, grid.stride,
                 crs_string(rasters.before.crs), "uint8 passthrough" if stretch.passthrough else stretch.to_dict())
        metadata = run_metadata(str(Path(options.before).resolve()), str(Path(options.after).resolve()),
                                options.bands or "1,2,3", options.nodata, chip_size, options.overlap, grid.grid_hash,
                                stretch.to_dict())
        writer = TileWriter(options.output, rasters.before.crs.to_wkt(), grid.grid_hash, metadata,
                            resume=options.resume, overwrite=options.overwrite)
        if writer.redone:
            log.info("resume: %d unfinished tile(s) (error/skipped) will be done again", writer.redone)
        common = {"model": str(info.get("model_name", "")), "backend": captioner.name, "run_id": summary.run_id}

        progress = _progress(summary.total, options.progress)
        try:
            pending: list[tuple[Chip, float, float, tuple[np.ndarray, np.ndarray]]] = []
            for chip in grid.chips(bounds, keep):
                if chip.tile_id in writer.done:
                    summary.skipped_done += 1
                    progress(1)
                    continue
                b = rasters.before_reader.read(chip)
                a = rasters.after_reader.read(chip)
                nb, na = nodata_fraction(b.valid), nodata_fraction(a.valid)
                if max(nb, na) > options.max_nodata:
                    record = make_record(tile_id=chip.tile_id, row=chip.row, col=chip.col,
                                         status=STATUS_SKIPPED_NODATA, nodata_before=nb, nodata_after=na,
                                         error=f"nodata {max(nb, na):.0%} over max {options.max_nodata:.0%}",
                                         **common)
                    writer.write([(record, chip.bounds)])
                    summary.counts[STATUS_SKIPPED_NODATA] += 1
                    progress(1)
                    continue
                pair = (_to_rgb(stretch.apply(b.array, b.valid), model_chip),
                        _to_rgb(stretch.apply(a.array, a.valid), model_chip))
                pending.append((chip, nb, na, pair))
                if len(pending) >= options.batch_size:
                    _flush(pending, captioner, writer, options, common, summary, progress)
                    pending = []
            _flush(pending, captioner, writer, options, common, summary, progress)
        finally:
            progress(None)
    return summary


def _flush(pending, captioner: Captioner, writer: TileWriter, options: DescribeOptions, common: dict,
           summary: DescribeSummary, progress) -> None:
    if not pending:
        return
    ids = [chip.tile_id for chip, *_ in pending]
    try:
        results = captioner.caption(ids, [p for *_, p in pending], options.max_new_tokens)
    except DescribeError as exc:
        # keep the reason on these tiles (the analyst sees it); --resume does them again
        writer.write([(make_record(tile_id=chip.tile_id, row=chip.row, col=chip.col, status=STATUS_ERROR,
                                   error=str(exc), nodata_before=nb, nodata_after=na, **common), chip.bounds)
                      for chip, nb, na, _ in pending])
        summary.counts[STATUS_ERROR] += len(pending)
        summary.note_error(str(exc))
        exc.summary = summary
        raise
    rows = []
    for (chip, nb, na, _), result in zip(pending, results, strict=True):
        if isinstance(result, Exception):
            record = make_record(tile_id=chip.tile_id, row=chip.row, col=chip.col, status=STATUS_ERROR,
                                 error=str(result), nodata_before=nb, nodata_after=na, **common)
            summary.note_error(f"tile {chip.tile_id}: {result}")
        else:
            record = make_record(tile_id=chip.tile_id, row=chip.row, col=chip.col, status=STATUS_OK,
                                 caption=result["caption"], confidence=result["confidence"],
                                 changed=result["changed"], nodata_before=nb, nodata_after=na, **common)
            summary.changed += int(bool(result["changed"]))
        summary.counts[record["status"]] += 1
        rows.append((record, chip.bounds))
    writer.write(rows)
    progress(len(rows))


def _progress(total: int, enabled: bool) -> Callable[[int | None], None]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="chip", desc="describe", disable=not enabled)

    def step(n: int | None) -> None:
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return step

