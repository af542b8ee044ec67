"""Processing algorithm ``ccexpert:describe_changes``: the one code path behind the toolbox, batch mode, the
model designer, ``processing.run`` and ``qgis_process``.

Plan (no network, cheap): open both rasters with GDAL, check they overlap, transform the AOI into the before
CRS, lay the chip grid and count the chips. Run: check OUTPUT (a .gpkg that is none of the inputs), fetch
``/v1/info``, check the API key (``/v1/auth/check``), compute the shared stretch, then stream chips in batches to
the backend and append each batch to the GeoPackage in one transaction. Nothing is written before every check
passed; an existing OUTPUT is replaced only once the run captions its first tile (``output.TileWriter``), and
RESUME refuses an OUTPUT made from other inputs unless RESUME_FORCE.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsMessageLog,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterAuthConfig,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsRectangle,
)
from qgis.PyQt.QtGui import QIcon

from . import settings
from .about import LOG_TAG, icon_path, tr
from .client import BackendClient, BackendError
from .core.fields import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SKIPPED_NODATA,
    make_record,
    run_metadata,
    source_identity,
    utc_now_iso,
)
from .core.grid import Bounds, Chip, ChipGrid
from .output import OutputError, TileWriter, check_output
from .prefetch import Prefetcher
from .reader import PairReader, RasterInputError, default_bands, encode_png, open_raster, raster_grid

DEFAULT_BATCH = 8
JSON_OVERHEAD_BYTES = 256  # per pair: id, keys, quotes


@dataclass
class Plan:
    """What a run will do, computed without touching the network."""

    reader: PairReader
    grid: ChipGrid
    bounds: Bounds
    keep: Callable[[Chip], bool] | None
    count: int
    crs_wkt: str


class DescribeChangesAlgorithm(QgsProcessingAlgorithm):
    BEFORE = "BEFORE"
    AFTER = "AFTER"
    AOI = "AOI"
    BANDS = "BANDS"
    CHIP_SIZE = "CHIP_SIZE"
    OVERLAP = "OVERLAP"
    MAX_NODATA = "MAX_NODATA"
    BACKEND_URL = "BACKEND_URL"
    AUTHCFG = "AUTHCFG"
    BATCH_SIZE = "BATCH_SIZE"
    RESUME = "RESUME"
    RESUME_FORCE = "RESUME_FORCE"
    MAX_CHIPS = "MAX_CHIPS"
    OUTPUT = "OUTPUT"

    # -- identity -----------------------------------------------------------------------------------------
    def name(self) -> str:
        return "describe_changes"

    def displayName(self) -> str:
        return tr("Describe changes")

    def shortHelpString(self) -> str:
        return tr(
            "Cuts a before/after raster pair into chips on the before raster's pixel grid over the area of interest, "
            "sends each chip pair to a CCExpert backend and writes one polygon per chip with a caption of what "
            "changed (fields tile_id, caption, confidence, changed, status, ...). Chips with more nodata than "
            "MAX_NODATA are not sent (status skipped_nodata). With RESUME, tiles already captioned in OUTPUT are "
            "skipped, so a canceled or failed run continues where it stopped; RESUME refuses an OUTPUT made from "
            "other rasters, bands, grid or model unless RESUME_FORCE is ticked. Without RESUME an existing OUTPUT is "
            "replaced once the run captions its first tile. CHIP_SIZE 0 and BATCH_SIZE 0 take the backend's "
            "values. Needs a running backend: ccexpert serve --model DIR --port 8000."
        )

    def icon(self) -> QIcon:
        return QIcon(icon_path())

    def createInstance(self) -> DescribeChangesAlgorithm:
        return DescribeChangesAlgorithm()

    def flags(self):
        return super().flags() | QgsProcessingAlgorithm.Flag.FlagCanCancel

    def createCustomParametersWidget(self, parent=None):
        """The dialog asks before a run above MAX_CHIPS, where Processing (scripts, qgis_process) refuses."""
        from .dialog import DescribeChangesDialog

        return DescribeChangesDialog(self.create(), parent=parent)

    # -- parameters ---------------------------------------------------------------------------------------
    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.BEFORE, tr("Before raster")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.AFTER, tr("After raster")))
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.AOI,
                tr("Area of interest (default: where both rasters overlap)"),
                [QgsProcessing.SourceType.TypeVectorPolygon],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterBand(
                self.BANDS, tr("Bands used as R, G, B (default 1, 2, 3; one band = grey)"), None, self.BEFORE,
                optional=True, allowMultiple=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.CHIP_SIZE, tr("Chip size in before-raster pixels (0 = the backend's chip size)"),
                QgsProcessingParameterNumber.Type.Integer, 0, minValue=0, maxValue=8192,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.OVERLAP, tr("Overlap between chips (pixels)"), QgsProcessingParameterNumber.Type.Integer, 0,
                minValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_NODATA, tr("Largest nodata fraction of a chip that is still captioned"),
                QgsProcessingParameterNumber.Type.Double, 0.5, minValue=0.0, maxValue=1.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(self.BACKEND_URL, tr("Backend URL"), settings.backend_url())
        )
        self.addParameter(
            QgsProcessingParameterAuthConfig(self.AUTHCFG, tr("API key (authentication configuration)"),
                                             settings.authcfg(), optional=True)
        )
        batch = QgsProcessingParameterNumber(
            self.BATCH_SIZE, tr("Chip pairs per request (0 = backend's limit, at most 8)"),
            QgsProcessingParameterNumber.Type.Integer, 0, minValue=0,
        )
        self.addParameter(batch)
        self.addParameter(
            QgsProcessingParameterBoolean(self.RESUME, tr("Resume: keep tiles already captioned in the output"), False)
        )
        force = QgsProcessingParameterBoolean(
            self.RESUME_FORCE, tr("Resume even if the output was made from other inputs (bands, stretch, model)"),
            False)
        force.setFlags(force.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(force)
        limit = QgsProcessingParameterNumber(
            self.MAX_CHIPS, tr("Refuse runs of more chips than"), QgsProcessingParameterNumber.Type.Integer,
            settings.max_chips(), minValue=1,
        )
        limit.setFlags(limit.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        batch.setFlags(batch.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(limit)
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.OUTPUT, tr("Change captions"), QgsProcessing.SourceType.TypeVectorPolygon,
                QgsProcessing.TEMPORARY_OUTPUT,
            )
        )
        for name, text in (
            ("TILES", tr("Tiles in the grid")),
            ("CAPTIONED", tr("Tiles captioned in this run")),
            ("CHANGED", tr("Changed tiles in the output")),
            ("ERRORS", tr("Tiles with errors in this run")),
            ("SKIPPED_NODATA", tr("Tiles skipped for nodata in this run")),
            ("RESUMED", tr("Tiles kept from an earlier run")),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, text))
        self.addOutput(QgsProcessingOutputString("RUN_ID", tr("Run id")))

    # -- planning (shared with the dialog's confirmation) -------------------------------------------------
    def plan(self, parameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback,
             out_size: int) -> Plan:
        before_layer = self.parameterAsRasterLayer(parameters, self.BEFORE, context)
        after_layer = self.parameterAsRasterLayer(parameters, self.AFTER, context)
        for label, layer in (("BEFORE", before_layer), ("AFTER", after_layer)):
            if layer is None:
                raise QgsProcessingException(tr("{0} raster is missing or cannot be loaded").format(label))
            if layer.providerType() != "gdal":
                raise QgsProcessingException(
                    tr("{0} raster must be a GDAL-readable file, not a {1} layer").format(label, layer.providerType())
                )
        try:
            before_ds = open_raster(before_layer.source(), "BEFORE")
            after_ds = open_raster(after_layer.source(), "AFTER")
            bands = self.parameterAsInts(parameters, self.BANDS, context) or default_bands(before_ds)
            chip_size = self.parameterAsInt(parameters, self.CHIP_SIZE, context) or out_size
            overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
            reader = PairReader(before_ds, after_ds, bands, out_size, log=feedback.pushInfo)
            grid = ChipGrid(reader.grid, chip_size, overlap)
        except (RasterInputError, ValueError) as exc:
            raise QgsProcessingException(str(exc)) from exc

        before_crs = QgsCoordinateReferenceSystem(before_ds.GetSpatialRef().ExportToWkt())
        after_crs = QgsCoordinateReferenceSystem(after_ds.GetSpatialRef().ExportToWkt())
        before_rect = QgsRectangle(*reader.grid.bounds)
        after_rect = QgsRectangle(*raster_grid(after_ds, "AFTER").bounds)
        if after_crs != before_crs:
            transform = QgsCoordinateTransform(after_crs, before_crs, context.transformContext())
            after_rect = transform.transformBoundingBox(after_rect)
        overlap_rect = before_rect.intersect(after_rect)
        if overlap_rect.isEmpty() or overlap_rect.width() <= 0 or overlap_rect.height() <= 0:
            raise QgsProcessingException(
                tr("BEFORE and AFTER rasters do not overlap (BEFORE {0}, AFTER {1} in the BEFORE CRS); pick a "
                   "co-registered pair of the same place").format(before_rect.toString(3), after_rect.toString(3))
            )
        keep_chip = None
        area = overlap_rect
        source = self.parameterAsSource(parameters, self.AOI, context)
        if source is not None:
            aoi = _aoi_geometry(source, before_crs, context, feedback)
            aoi = aoi.intersection(QgsGeometry.fromRect(overlap_rect))
            if aoi.isEmpty() or aoi.area() <= 0:
                raise QgsProcessingException(
                    tr("The area of interest does not intersect the area where BEFORE and AFTER overlap")
                )
            area = aoi.boundingBox()
            keep_chip = _touches(aoi)

        bounds = (area.xMinimum(), area.yMinimum(), area.xMaximum(), area.yMaximum())
        count = grid.count(bounds, keep_chip)
        if count == 0:
            raise QgsProcessingException(tr("The area of interest covers no chip of the BEFORE raster"))
        return Plan(reader, grid, bounds, keep_chip, count, before_ds.GetSpatialRef().ExportToWkt())

    # -- run ----------------------------------------------------------------------------------------------
    def _check_output(self, parameters, context: QgsProcessingContext) -> str:
        """OUTPUT, refused before anything else when it is not a .gpkg or is one of the inputs."""
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        inputs = {}
        for label, name in (("BEFORE raster", self.BEFORE), ("AFTER raster", self.AFTER)):
            layer = self.parameterAsRasterLayer(parameters, name, context)
            inputs[label] = layer.source() if layer is not None else None
        try:
            aoi = self.parameterAsVectorLayer(parameters, self.AOI, context)
            inputs["AOI"] = aoi.source() if aoi is not None else None
        except Exception:  # noqa: BLE001 - a source QGIS cannot resolve to a layer is not a file to protect
            inputs["AOI"] = None
        try:
            check_output(output, inputs)
        except OutputError as exc:
            raise QgsProcessingException(str(exc)) from exc
        return output

    def processAlgorithm(self, parameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback):
        output = self._check_output(parameters, context)
        url = self.parameterAsString(parameters, self.BACKEND_URL, context) or settings.backend_url()
        authcfg = self.parameterAsString(parameters, self.AUTHCFG, context)
        try:
            client = BackendClient(url, authcfg, feedback=feedback)
            info = client.info()
            access = client.check_key()  # a refused key stops here, before any output
        except BackendError as exc:
            raise QgsProcessingException(str(exc)) from exc
        if access is None:
            feedback.pushInfo(tr("The backend has no /v1/auth/check (older version): the first batch checks the key"))
        out_size = int(info["chip_size"])
        feedback.pushInfo(
            tr("Backend {0}: model {1} {2}, chips {3} px, device {4}{5}").format(
                client.base_url, info.get("model_name"), info.get("model_version", ""), out_size, info.get("device"),
                tr(" (demo model)") if info.get("demo") else "",
            )
        )
        plan = self.plan(parameters, context, feedback, out_size)
        limit = self.parameterAsInt(parameters, self.MAX_CHIPS, context)
        feedback.pushInfo(tr("{0} chips of {1} px (stride {2}) over the area of interest").format(
            plan.count, plan.grid.chip_size, plan.grid.stride))
        if plan.count > limit:
            raise QgsProcessingException(
                tr("This run needs {0} chips, more than MAX_CHIPS = {1}. Choose a smaller area of interest or a "
                   "larger chip size, or raise MAX_CHIPS.").format(plan.count, limit)
            )
        stretch = plan.reader.compute_stretch(plan.bounds)
        if not stretch.passthrough:
            feedback.pushInfo(tr("8-bit stretch shared by both dates (2-98 %): low {0}, high {1}").format(
                [round(v, 3) for v in stretch.lo], [round(v, 3) for v in stretch.hi]))

        resume = self.parameterAsBoolean(parameters, self.RESUME, context)
        force = self.parameterAsBoolean(parameters, self.RESUME_FORCE, context)
        before_path, after_path = plan.reader.before.GetDescription(), plan.reader.after_src.GetDescription()
        try:
            metadata = run_metadata(
                before_path, after_path, ",".join(str(b) for b in plan.reader.bands), None,
                plan.grid.chip_size, plan.grid.overlap, plan.grid.grid_hash, stretch.to_dict(),
                model=" ".join(str(info.get(k, "")) for k in ("model_name", "model_version")).strip(),
                before_source=source_identity(before_path), after_source=source_identity(after_path))
            writer = TileWriter(output, plan.crs_wkt, plan.grid.grid_hash, resume, metadata, force=force)
        except (OutputError, OSError) as exc:
            raise QgsProcessingException(str(exc)) from exc
        if writer.differences:
            feedback.reportError(tr("RESUME_FORCE: resuming {0} although it was made by another run: {1}").format(
                output, "; ".join(writer.differences)))
        if resume:
            feedback.pushInfo(tr("Resuming: {0} tile(s) already captioned in {1}").format(len(writer.done), output))

        batch_size = self.parameterAsInt(parameters, self.BATCH_SIZE, context)
        max_batch = max(1, int(info.get("max_batch") or DEFAULT_BATCH))
        batch_size = min(batch_size or min(DEFAULT_BATCH, max_batch), max_batch)
        run = _Run(
            client=client, writer=writer, feedback=feedback, max_nodata=self.parameterAsDouble(
                parameters, self.MAX_NODATA, context),
            run_id=uuid.uuid4().hex[:12], backend=client.base_url,
            max_body=int(info.get("max_body_bytes") or 0), model=str(info.get("model_name") or ""),
        )
        completed = False
        try:
            stats = run.execute(plan, batch_size)
            completed = True
        finally:
            if run.refused_key:
                writer.discard()  # a refused key: no output at all (or the previous one as it was)
            # a run that captioned nothing keeps a previous OUTPUT unless it ended with no error
            kept = writer.close(keep=completed and run.stats.get("ERRORS", 0) == 0)
        if not kept:
            raise QgsProcessingException(
                tr("No tile was captioned: {0} tile(s) failed. First error: {1}\n{2} was left as it was; fix the "
                   "problem and run again.").format(stats["ERRORS"], run.first_error, output)
            )
        _store_style(output, feedback)
        _style_on_load(context, output)
        feedback.pushInfo(
            tr("Done: {0} tiles captioned ({1} changed), {2} errors, {3} skipped for nodata, {4} kept from before; "
               "output {5}").format(stats["CAPTIONED"], stats["CHANGED_RUN"], stats["ERRORS"],
                                    stats["SKIPPED_NODATA"], stats["RESUMED"], output)
        )
        QgsMessageLog.logMessage(
            tr("describe_changes run {0}: {1} captioned, {2} changed, {3} errors, {4} skipped (nodata), {5} resumed; "
               "{6}").format(run.run_id, stats["CAPTIONED"], stats["CHANGED_RUN"], stats["ERRORS"],
                             stats["SKIPPED_NODATA"], stats["RESUMED"], output),
            LOG_TAG, Qgis.MessageLevel.Warning if stats["ERRORS"] else Qgis.MessageLevel.Info,
        )
        if stats["ERRORS"] and stats["CAPTIONED"] + stats["RESUMED"] == 0:
            raise QgsProcessingException(
                tr("No tile was captioned: {0} tile(s) failed. First error: {1}\nThe failed tiles are saved in {2} "
                   "with their error; fix the problem and run again with RESUME.").format(
                    stats["ERRORS"], run.first_error, output)
            )
        if stats["ERRORS"]:
            feedback.reportError(tr("{0} tile(s) failed (first error: {1}); see the error field, and rerun with "
                                    "RESUME to retry them").format(stats["ERRORS"], run.first_error))
        return {
            self.OUTPUT: output,
            "TILES": plan.count,
            "CAPTIONED": stats["CAPTIONED"],
            "CHANGED": stats["CHANGED_RUN"],
            "ERRORS": stats["ERRORS"],
            "SKIPPED_NODATA": stats["SKIPPED_NODATA"],
            "RESUMED": stats["RESUMED"],
            "RUN_ID": run.run_id,
        }


@dataclass
class _Run:
    client: BackendClient
    writer: TileWriter
    feedback: QgsProcessingFeedback
    max_nodata: float
    run_id: str
    backend: str
    max_body: int
    model: str
    batch_size: int = DEFAULT_BATCH
    first_error: str | None = None  # the first tile error of this run, for the summary and the exception
    refused_key: bool = False  # the backend refused the API key before anything was captioned
    stats: dict = field(default_factory=dict)

    def _note_error(self, message: str) -> None:
        if self.first_error is None:
            self.first_error = message

    def _prepare(self, plan: Plan, resumed: frozenset[str]):
        """(kind, chip, payload) for every chip, in grid order; runs in the prefetch thread."""
        for chip in plan.grid.chips(plan.bounds, plan.keep):
            if chip.tile_id in resumed:
                yield "resumed", chip, None
                continue
            if self.feedback.isCanceled():
                return
            images = plan.reader.read_chip(chip)
            nodata = (images.nodata_before, images.nodata_after)
            if max(nodata) > self.max_nodata:
                yield "skipped", chip, nodata
                continue
            pair = {
                "id": chip.tile_id,
                "before": base64.b64encode(encode_png(images.before)).decode("ascii"),
                "after": base64.b64encode(encode_png(images.after)).decode("ascii"),
            }
            yield "pair", chip, (pair, *nodata)

    def execute(self, plan: Plan, batch_size: int) -> dict[str, int]:
        self.batch_size = batch_size
        stats = self.stats = {"CAPTIONED": 0, "CHANGED_RUN": 0, "ERRORS": 0, "SKIPPED_NODATA": 0, "RESUMED": 0}
        pending: list[tuple[Chip, dict, float, float]] = []  # chip, pair, nodata fractions
        finished: list[tuple[dict, Bounds]] = []  # records written with the next batch
        seen = 0
        pending_bytes = 0
        resumed = frozenset(self.writer.done)
        with Prefetcher(lambda: self._prepare(plan, resumed), depth=2 * self.batch_size) as prepared:
            for kind, chip, payload in prepared:
                seen += 1
                if kind == "resumed":
                    stats["RESUMED"] += 1
                    continue
                if self.feedback.isCanceled():
                    break
                if kind == "skipped":
                    finished.append((self._record(chip, STATUS_SKIPPED_NODATA, *payload), chip.bounds))
                    stats["SKIPPED_NODATA"] += 1
                else:
                    pair, nb, na = payload
                    size = len(pair["before"]) + len(pair["after"]) + JSON_OVERHEAD_BYTES
                    if pending and self.max_body and pending_bytes + size > self.max_body:
                        self._flush(pending, finished, stats)
                        pending, finished, pending_bytes = [], [], 0
                    pending.append((chip, pair, nb, na))
                    pending_bytes += size
                if len(pending) >= self.batch_size or len(finished) >= 64:
                    self._flush(pending, finished, stats)
                    pending, finished, pending_bytes = [], [], 0
                    self.feedback.setProgress(100.0 * seen / plan.count)
        if not self.feedback.isCanceled():
            self._flush(pending, finished, stats)
        else:
            self.writer.write(finished)  # skipped tiles cost nothing to keep
        self.feedback.setProgress(100.0)
        if self.feedback.isCanceled():
            raise QgsProcessingException(
                tr("Canceled: {0} tile(s) are saved in {1}; run again with RESUME to continue").format(
                    len(self.writer.done), self.writer.path)
            )
        return stats

    def _record(self, chip: Chip, status: str, nb: float, na: float, **kw) -> dict:
        return make_record(
            tile_id=chip.tile_id, row=chip.row, col=chip.col, status=status, nodata_before=nb, nodata_after=na,
            backend=self.backend, run_id=self.run_id, created_utc=utc_now_iso(), **kw,
        )

    def _flush(self, pending, finished, stats) -> None:
        if pending:
            start = time.monotonic()
            finished = finished + self._caption(pending, stats)
            self._adapt_batch(len(pending), time.monotonic() - start)
        self.writer.write(finished)

    def _adapt_batch(self, sent: int, seconds: float) -> None:
        """Halve the batch when a request took more than a third of the timeout (a slow device), so later
        requests do not time out."""
        limit = self.client.effective_timeout_s(self.client.timeout_s + self.client.per_pair_timeout_s * sent)
        if self.batch_size > 1 and seconds > limit / 3:
            self.batch_size = max(1, self.batch_size // 2)
            self.feedback.pushInfo(tr("A batch of {0} took {1:.0f} s; sending {2} chip pairs per request from now on")
                                   .format(sent, seconds, self.batch_size))

    def _caption(self, pending, stats) -> list[tuple[dict, Bounds]]:
        """Records for ``pending``; a refused batch is retried pair by pair so one bad chip fails alone."""
        try:
            model, results = self.client.captions([p for _, p, _, _ in pending])
        except BackendError as exc:
            if exc.fatal:
                if exc.kind == "auth" and stats["CAPTIONED"] == 0:  # an older backend without /v1/auth/check
                    self.refused_key = True
                    raise QgsProcessingException(
                        tr("{0}\nNothing was captioned and nothing is kept; fix the key and run again.").format(exc)
                    ) from exc
                if exc.kind != "canceled":
                    records = [(self._record(c, STATUS_ERROR, nb, na, error=str(exc), model=self.model), c.bounds)
                               for c, _, nb, na in pending]
                    stats["ERRORS"] += len(records)
                    self.writer.write(records)
                raise QgsProcessingException(
                    tr("{0}\n{1} tile(s) are saved in {2}; fix the problem and run again with RESUME.").format(
                        exc, len(self.writer.done), self.writer.path)
                ) from exc
            if len(pending) > 1:
                out = []
                for one in pending:
                    out += self._caption([one], stats)
                return out
            chip, _, nb, na = pending[0]
            self.feedback.reportError(tr("Tile {0}: {1}").format(chip.tile_id, exc))
            self._note_error(tr("tile {0}: {1}").format(chip.tile_id, exc))
            stats["ERRORS"] += 1
            return [(self._record(chip, STATUS_ERROR, nb, na, error=str(exc), model=self.model), chip.bounds)]
        out = []
        for (chip, _, nb, na), result in zip(pending, results, strict=True):
            if result.get("status", STATUS_OK) == STATUS_OK and result.get("caption") is not None:
                changed = bool(result.get("changed"))
                record = self._record(chip, STATUS_OK, nb, na, caption=str(result["caption"]),
                                      confidence=result.get("confidence"), changed=changed, model=model or self.model)
                stats["CAPTIONED"] += 1
                stats["CHANGED_RUN"] += int(changed)
            else:
                reason = str(result.get("error") or tr("the backend returned no caption"))
                self.feedback.reportError(tr("Tile {0}: {1}").format(chip.tile_id, reason))
                self._note_error(tr("tile {0}: {1}").format(chip.tile_id, reason))
                record = self._record(chip, STATUS_ERROR, nb, na, error=reason, model=model or self.model)
                stats["ERRORS"] += 1
            out.append((record, chip.bounds))
        return out


def _aoi_geometry(source, target_crs, context, feedback) -> QgsGeometry:
    """Union of the AOI features (selection honoured by the parameter) in ``target_crs``."""
    request = QgsFeatureRequest().setDestinationCrs(target_crs, context.transformContext())
    parts = []
    for feature in source.getFeatures(request):
        if feedback.isCanceled():
            raise QgsProcessingException(tr("Canceled."))
        geometry = feature.geometry()
        if geometry and not geometry.isEmpty():
            parts.append(geometry.makeValid() if not geometry.isGeosValid() else geometry)
    if not parts:
        raise QgsProcessingException(tr("The area of interest has no polygon (no features, or none selected)"))
    return QgsGeometry.unaryUnion(parts)


def _touches(aoi: QgsGeometry):
    """``keep(chip)``: the chip's footprint touches the AOI (prepared geometry, built once)."""
    engine = QgsGeometry.createGeometryEngine(aoi.constGet())
    engine.prepareGeometry()

    def keep(chip: Chip, _engine=engine, _aoi=aoi) -> bool:  # _aoi keeps the engine's geometry alive
        rect = QgsGeometry.fromRect(QgsRectangle(*chip.bounds))
        return _engine.intersects(rect.constGet())

    return keep


_POST_PROCESSORS: list = []  # Processing keeps only a raw pointer to post-processors


def _store_style(output: str, feedback: QgsProcessingFeedback) -> None:
    """The style travels with the layer (GeoPackage ``layer_styles``): it opens styled wherever it is opened."""
    import sqlite3

    from .core.fields import LAYER_NAME
    from .core.style_table import write_shipped_style

    try:
        write_shipped_style(output, LAYER_NAME)
    except (OSError, ValueError, sqlite3.Error) as exc:
        feedback.pushWarning(tr("The layer style could not be stored in {0}: {1}").format(output, exc))


def _style_on_load(context: QgsProcessingContext, output: str) -> None:
    if not context.willLoadLayerOnCompletion(output):
        return
    from .layer_style import ChangeLayerPostProcessor

    processor = ChangeLayerPostProcessor()
    _POST_PROCESSORS.append(processor)
    details = context.layerToLoadOnCompletionDetails(output)
    details.name = tr("Change captions")
    details.setPostProcessor(processor)
