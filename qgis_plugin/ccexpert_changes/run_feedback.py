"""What the analyst sees around a run: per-batch progress, the pixel-size warning, and the style and abstract
that travel with the output layer."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from qgis.core import QgsProcessingContext, QgsProcessingFeedback

from .about import tr
from .core.gsd import gsd_warning
from .core.layer_metadata import finish_output
from .core.output_contract import layer_counts
from .core.run_loop import RunStats, progress_text


class RunProgress:
    """Per-batch feedback: the bar after every batch, and "120/400 chips · 3.4 pairs/s · 1 min 22 s left" as its
    text every ``TEXT_EVERY_S`` seconds and for the last batch. The Processing dialog copies every progress text
    into its Log (QgsProcessingAlgorithmDialogBase::setProgressText), so a text per batch was a log line per batch."""

    TEXT_EVERY_S = 10.0

    def __init__(self, feedback: QgsProcessingFeedback, total: int, clock: Callable[[], float] = time.monotonic):
        self.feedback, self.total, self.clock = feedback, max(1, total), clock
        self.shown: float | None = None
        self.shown_done = -1
        self.shown_waiting = False

    def __call__(self, stats: RunStats) -> None:
        self.feedback.setProgress(100.0 * stats.done / self.total)
        now = self.clock()
        last = stats.done >= self.total and stats.done != self.shown_done  # once, however often it is reported
        # an outage starting or ending is shown at once, whatever the throttle (the analyst must not see a pace
        # while the backend is down, nor "waiting" once it answers again)
        flipped = (getattr(stats, "waiting", None) is not None) != self.shown_waiting
        if self.shown is None or now - self.shown >= self.TEXT_EVERY_S or last or flipped:
            self.shown, self.shown_done = now, stats.done
            self.shown_waiting = getattr(stats, "waiting", None) is not None
            self.feedback.setProgressText(progress_text(stats))


def pixel_size_m(ds) -> float | None:
    """The raster's pixel width in metres; None in degrees (no metres to compare) or without a CRS."""
    srs = ds.GetSpatialRef()
    if srs is None or not srs.IsProjected():
        return None
    return abs(ds.GetGeoTransform()[1]) * srs.GetLinearUnits()


def warn_gsd(before_ds, chip_size: int, model_input: int, info: dict, feedback: QgsProcessingFeedback) -> str | None:
    """Warn when the chips give the model a very different pixel size than its model card's ``gsd_m``; the
    warning is returned for the layer's abstract."""
    text = gsd_warning(pixel_size_m(before_ds), chip_size, model_input, info.get("gsd_m"))
    if text:
        feedback.pushWarning(text)
    return text


def counts_of_layer(output: str, stats: RunStats, feedback: QgsProcessingFeedback) -> dict[str, int]:
    """The layer's counts (``core.output_contract.layer_counts``); this run's when the file cannot be read."""
    try:
        return layer_counts(output)
    except (OSError, sqlite3.Error) as exc:
        feedback.pushWarning(tr("Cannot count the rows of {0} ({1}): the counts are this run's").format(output, exc))
        return {
            "captioned": stats.captioned + stats.resumed,
            "changed": stats.changed,
            "errors": stats.errors,
            "skipped_nodata": stats.skipped_nodata,
        }


def finish_layer(
    output: str,
    info: dict,
    counts: dict[str, int],
    reader,
    backend: str,
    feedback: QgsProcessingFeedback,
    notes: Sequence[str] = (),
) -> None:
    """The style and the abstract travel with the layer (GeoPackage ``layer_styles`` and ``gpkg_contents``), so it
    opens styled and says which model made it (the demo model flagged) wherever it is opened; ``counts`` are the
    layer's (:func:`counts_of_layer`). A failure here costs the styling only, never the captions."""
    try:
        finish_output(
            output,
            info,
            counts,
            before=reader.before.GetDescription(),
            after=reader.after_src.GetDescription(),
            backend=backend,
            notes=notes,
        )
    except (OSError, ValueError, sqlite3.Error) as exc:
        feedback.pushWarning(tr("The layer style or abstract could not be stored in {0}: {1}").format(output, exc))


def write_areas(output: str, feedback: QgsProcessingFeedback) -> None:
    """Layer change_areas; a failure is reported and leaves the tiles as they are (they are the result)."""
    from .area_layer import AreaLayerError, write_change_areas

    try:
        feedback.pushInfo(tr("{0} change area(s) written to layer change_areas").format(write_change_areas(output)))
    except AreaLayerError as exc:
        feedback.reportError(str(exc))


def tile_error_reporter(feedback: QgsProcessingFeedback) -> Callable[[str, str], None]:
    def report(tile_id: str, message: str) -> None:
        feedback.reportError(tr("Tile {0}: {1}").format(tile_id, message))

    return report


_POST_PROCESSORS: list = []  # Processing keeps only a raw pointer to post-processors


def style_on_load(context: QgsProcessingContext, output: str, after_path: str) -> None:
    """The result loads styled and named after its after raster and time (``layer_style``)."""
    if not context.willLoadLayerOnCompletion(output):
        return
    from .layer_style import ChangeLayerPostProcessor

    processor = ChangeLayerPostProcessor(after_path, datetime.now())  # names the layer: runs told apart
    _POST_PROCESSORS.append(processor)
    details = context.layerToLoadOnCompletionDetails(output)
    details.name = tr("Change captions")
    details.setPostProcessor(processor)
