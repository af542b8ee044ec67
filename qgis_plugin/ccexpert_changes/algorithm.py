"""Processing algorithm ``ccexpert:describe_changes``: the one code path behind the toolbox, batch mode, the
model designer, ``processing.run`` and ``qgis_process``.

Plan (no network, cheap): open both rasters with GDAL, refuse Before = After, check they overlap, transform the
area of interest (a polygon layer and/or an extent such as the map canvas) into the before CRS, lay the chip grid
and count the chips. Run: check OUTPUT (a .gpkg that is none of the inputs), fetch ``/v1/info``, check the API key
(``/v1/auth/check``), compute the shared stretch, then hand the chips to the run loop shared with ``ccexpert
describe`` (``core.run_loop``: batches, several requests in flight, rows written in grid order). Nothing is
written before every check passed; an existing OUTPUT is replaced only once the run captions its first tile
(``output.TileWriter``), and RESUME refuses an OUTPUT made from other inputs unless RESUME_FORCE.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from qgis.core import (
    Qgis,
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
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)
from qgis.PyQt.QtGui import QIcon

from . import settings
from .about import LOG_TAG, icon_path, tr
from .backend_client import BackendClient, BackendError
from .chips import BackendCaptioner, ChipEncoder
from .core.fields import run_metadata, source_identity
from .core.run_loop import RunAborted, RunLoop, RunSettings, RunStats
from .output import OutputError, TileWriter, check_output
from .planning import DEFAULT_BANDS, Plan, make_plan
from .qthreads import QThreadExecutor
from .reader import RasterInputError
from .run_feedback import RunProgress, finish_layer, warn_gsd

DEFAULT_BATCH = 8
MAX_IN_FLIGHT = 16  # requests at once, whatever a backend advertises


class DescribeChangesAlgorithm(QgsProcessingAlgorithm):
    BEFORE = "BEFORE"
    AFTER = "AFTER"
    AOI = "AOI"
    EXTENT = "EXTENT"
    BANDS = "BANDS"
    CHIP_SIZE = "CHIP_SIZE"
    OVERLAP = "OVERLAP"
    MAX_NODATA = "MAX_NODATA"
    BACKEND_URL = "BACKEND_URL"
    AUTHCFG = "AUTHCFG"
    BATCH_SIZE = "BATCH_SIZE"
    IN_FLIGHT = "IN_FLIGHT"
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
            "<p>Describes what changed between two co-registered rasters of the same place. The area of interest is "
            "cut into square chips on the Before raster's pixel grid; each Before/After pair of chips goes to a "
            'CCExpert backend, and the output gets one square per chip with a caption such as "two buildings are '
            'built on the bareland at the top", its confidence and whether anything changed.</p>'
            "<p><b>Area of interest</b>: a polygon layer (selected features only, if ticked) and/or an extent, such "
            "as the current map canvas extent; left empty, the whole area where both rasters overlap.</p>"
            "<p>Chips with more nodata than the largest nodata share are not sent; they are kept as "
            '"skipped_nodata". <b>Resume</b> keeps the tiles an earlier run into the same output captioned, so a '
            "canceled or failed run continues where it stopped; it refuses an output made from other rasters, bands, "
            'grid or model unless you tick "Resume even if the output was made from other inputs". Without Resume '
            "an existing output is replaced once the run captions its first tile.</p>"
            "<p>Needs a running backend (<i>ccexpert serve</i>); set its URL and API key in the CCExpert settings. "
            "Chip size 0 and the advanced request settings 0 take the backend's own values.</p>"
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
            QgsProcessingParameterExtent(
                self.EXTENT, tr("Area of interest as an extent (e.g. the current map canvas extent)"), optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterBand(
                self.BANDS,
                tr("Bands shown as red, green, blue (a one-band raster is read as grey)"),
                DEFAULT_BANDS,
                self.BEFORE,
                optional=True,
                allowMultiple=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.CHIP_SIZE,
                tr("Chip size in Before-raster pixels (0 = the model's chip size, asked from the backend)"),
                QgsProcessingParameterNumber.Type.Integer,
                0,
                minValue=0,
                maxValue=8192,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.OVERLAP,
                tr("Overlap between chips (pixels)"),
                QgsProcessingParameterNumber.Type.Integer,
                0,
                minValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_NODATA,
                tr("Largest nodata share (0-1) of a chip that is still captioned"),
                QgsProcessingParameterNumber.Type.Double,
                0.5,
                minValue=0.0,
                maxValue=1.0,
            )
        )
        self.addParameter(QgsProcessingParameterString(self.BACKEND_URL, tr("Backend URL"), settings.backend_url()))
        self.addParameter(
            QgsProcessingParameterAuthConfig(
                self.AUTHCFG, tr("API key (authentication configuration)"), settings.authcfg(), optional=True
            )
        )
        batch = QgsProcessingParameterNumber(
            self.BATCH_SIZE,
            tr("Chip pairs per request (0 = the backend's limit, at most 8)"),
            QgsProcessingParameterNumber.Type.Integer,
            0,
            minValue=0,
        )
        self.addParameter(batch)
        in_flight = QgsProcessingParameterNumber(
            self.IN_FLIGHT,
            tr("Requests at the backend at once (0 = the capacity the backend advertises)"),
            QgsProcessingParameterNumber.Type.Integer,
            0,
            minValue=0,
            maxValue=MAX_IN_FLIGHT,
        )
        in_flight.setFlags(in_flight.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(in_flight)
        self.addParameter(
            QgsProcessingParameterBoolean(self.RESUME, tr("Resume: keep tiles already captioned in the output"), False)
        )
        force = QgsProcessingParameterBoolean(
            self.RESUME_FORCE, tr("Resume even if the output was made from other inputs (bands, stretch, model)"), False
        )
        force.setFlags(force.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(force)
        limit = QgsProcessingParameterNumber(
            self.MAX_CHIPS,
            tr("Ask before runs of more chips than"),
            QgsProcessingParameterNumber.Type.Integer,
            settings.max_chips(),
            minValue=1,
        )
        limit.setFlags(limit.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        batch.setFlags(batch.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(limit)
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.OUTPUT,
                tr("Change captions"),
                QgsProcessing.SourceType.TypeVectorPolygon,
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
        self.addOutput(QgsProcessingOutputNumber("DEMO", tr("1 when the captions come from the demo model")))
        self.addOutput(QgsProcessingOutputString("MODEL", tr("Model that made the captions")))
        self.addOutput(QgsProcessingOutputString("RUN_ID", tr("Run id")))

    # -- planning (shared with the dialog's confirmation) -------------------------------------------------
    def plan(self, parameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback, out_size: int) -> Plan:
        """What a run will do, without the network (shared with the dialog's confirmation): see ``planning``."""
        return make_plan(self, parameters, context, feedback, out_size)

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
        except Exception:  # a source QGIS cannot resolve to a layer is not a file to protect
            inputs["AOI"] = None
        try:
            check_output(output, inputs)
        except OutputError as exc:
            raise QgsProcessingException(str(exc)) from exc
        return output

    def processAlgorithm(self, parameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback):
        output = self._check_output(parameters, context)
        client, info = self._connect(parameters, context, feedback)
        out_size = int(info["chip_size"])
        plan = self.plan(parameters, context, feedback, out_size)
        warn_gsd(plan.reader.before, plan.grid.chip_size, out_size, info, feedback)
        feedback.pushInfo(
            tr("{0} chips of {1} px (stride {2}) over the area of interest").format(
                plan.count, plan.grid.chip_size, plan.grid.stride
            )
        )
        stretch = plan.reader.compute_stretch(plan.bounds)
        if not stretch.passthrough:
            feedback.pushInfo(
                tr("8-bit stretch shared by both dates (2-98 %): low {0}, high {1}").format(
                    [round(v, 3) for v in stretch.lo], [round(v, 3) for v in stretch.hi]
                )
            )
        model = " ".join(str(info.get(k, "")) for k in ("model_name", "model_version")).strip()
        writer = self._writer(parameters, context, feedback, output, plan, stretch, model)
        self._check_limit(parameters, context, plan, writer)
        run_id = uuid.uuid4().hex[:12]
        common = {"model": str(info.get("model_name") or ""), "backend": client.base_url, "run_id": run_id}
        loop = RunLoop(
            ChipEncoder(plan.reader, self.parameterAsDouble(parameters, self.MAX_NODATA, context)),
            BackendCaptioner(client),
            writer,
            self._settings(parameters, context, feedback, info, common),
            on_progress=RunProgress(feedback, plan.count),
            is_canceled=feedback.isCanceled,
            on_notice=feedback.pushInfo,
            on_tile_error=_tile_error_reporter(feedback),
            executor=QThreadExecutor,  # QGIS request timeouts need threads Qt started
        )
        stats = self._run(loop, plan, writer, output)
        finish_layer(output, info, stats, plan.reader, client.base_url, feedback)
        _style_on_load(context, output)
        summary = tr(
            "{0} tiles captioned ({1} changed), {2} errors, {3} skipped for nodata, {4} kept from before"
        ).format(stats.captioned, stats.changed, stats.errors, stats.skipped_nodata, stats.resumed)
        feedback.pushInfo(tr("Done: {0}; output {1}").format(summary, output))
        QgsMessageLog.logMessage(
            tr("describe_changes run {0}: {1}; {2}").format(run_id, summary, output),
            LOG_TAG,
            Qgis.MessageLevel.Warning if stats.errors else Qgis.MessageLevel.Info,
        )
        if stats.errors and stats.captioned + stats.resumed == 0:
            raise QgsProcessingException(
                tr(
                    "No tile was captioned: {0} tile(s) failed. First error: {1}\nThe failed tiles are saved in {2} "
                    "with their error; fix the problem and run again with Resume."
                ).format(stats.errors, stats.first_error, output)
            )
        if stats.errors:
            feedback.reportError(
                tr(
                    "{0} tile(s) failed (first error: {1}); see the error field, and run again with "
                    "Resume to retry them"
                ).format(stats.errors, stats.first_error)
            )
        if info.get("demo"):
            feedback.pushWarning(
                tr(
                    "These captions come from the DEMO model, trained on synthetic scenes only: they "
                    "are not meaningful on real imagery. Serve a real CCExpert checkpoint for real "
                    "work."
                )
            )
        return {
            self.OUTPUT: output,
            "TILES": plan.count,
            "CAPTIONED": stats.captioned,
            "CHANGED": stats.changed,
            "ERRORS": stats.errors,
            "SKIPPED_NODATA": stats.skipped_nodata,
            "RESUMED": stats.resumed,
            "DEMO": int(bool(info.get("demo"))),
            "MODEL": model,
            "RUN_ID": run_id,
        }

    def _connect(self, parameters, context, feedback) -> tuple[BackendClient, dict]:
        """The backend's info, and its verdict on the API key, before anything is written."""
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
        feedback.pushInfo(
            tr("Backend {0}: model {1} {2}, chips {3} px, device {4}{5}").format(
                client.base_url,
                info.get("model_name"),
                info.get("model_version", ""),
                info["chip_size"],
                info.get("device"),
                tr(" (DEMO model: synthetic scenes only)") if info.get("demo") else "",
            )
        )
        return client, info

    def _writer(self, parameters, context, feedback, output: str, plan: Plan, stretch, model: str) -> TileWriter:
        resume = self.parameterAsBoolean(parameters, self.RESUME, context)
        force = self.parameterAsBoolean(parameters, self.RESUME_FORCE, context)
        before_path, after_path = plan.reader.before.GetDescription(), plan.reader.after_src.GetDescription()
        try:
            metadata = run_metadata(
                before_path,
                after_path,
                ",".join(str(b) for b in plan.reader.bands),
                None,
                plan.grid.chip_size,
                plan.grid.overlap,
                plan.grid.grid_hash,
                stretch.to_dict(),
                model=model,
                before_source=source_identity(before_path),
                after_source=source_identity(after_path),
            )
            writer = TileWriter(output, plan.crs_wkt, plan.grid.grid_hash, metadata, resume=resume, force=force)
        except (OutputError, OSError) as exc:
            raise QgsProcessingException(str(exc)) from exc
        if writer.differences:
            feedback.reportError(
                tr("Resuming {0} although it was made by another run: {1}").format(
                    output, "; ".join(writer.differences)
                )
            )
        if resume:
            feedback.pushInfo(tr("Resuming: {0} tile(s) already captioned in {1}").format(len(writer.done), output))
        return writer

    def _check_limit(self, parameters, context, plan: Plan, writer: TileWriter) -> None:
        """Scripts and qgis_process stop above the limit (the dialog asks instead); tiles a resume keeps are not
        sent, so they do not count."""
        limit = self.parameterAsInt(parameters, self.MAX_CHIPS, context)
        to_send = plan.count
        if writer.done:
            to_send = sum(1 for chip in plan.grid.chips(plan.bounds, plan.keep) if chip.tile_id not in writer.done)
        if to_send > limit:
            writer.discard()
            writer.finish(keep=False)
            raise QgsProcessingException(
                tr(
                    'This run needs {0} chips, more than the {1} of "Ask before runs of more chips than". Choose a '
                    "smaller area of interest or a larger chip size, or raise that limit."
                ).format(to_send, limit)
            )

    def _settings(self, parameters, context, feedback, info: dict, common: dict) -> RunSettings:
        """Pairs per request and requests in flight: what the user set, else what the backend advertises."""
        max_batch = max(1, int(info.get("max_batch") or DEFAULT_BATCH))
        batch_size = self.parameterAsInt(parameters, self.BATCH_SIZE, context)
        batch_size = min(batch_size or min(DEFAULT_BATCH, max_batch), max_batch)
        in_flight = self.parameterAsInt(parameters, self.IN_FLIGHT, context)
        if not in_flight:
            try:
                in_flight = int(info.get("max_in_flight") or 1)
            except (TypeError, ValueError):
                in_flight = 1
        in_flight = max(1, min(MAX_IN_FLIGHT, in_flight))
        if in_flight > 1:
            feedback.pushInfo(
                tr("{0} requests of up to {1} chip pairs at the backend at once").format(in_flight, batch_size)
            )
        return RunSettings(
            batch_size=batch_size,
            max_request_bytes=int(info.get("max_body_bytes") or 0),
            in_flight=in_flight,
            common=common,
        )

    def _run(self, loop: RunLoop, plan: Plan, writer: TileWriter, output: str) -> RunStats:
        """Run the loop; every way it can stop becomes one message that says what is kept and what to do."""
        completed = refused = False
        try:
            stats = loop.run(plan.grid.chips(plan.bounds, plan.keep), plan.count)
            completed = True
        except RunAborted as exc:
            refused = exc.kind == "refused_key"
            if refused:  # a refused key: no output at all (or the previous one as it was)
                writer.discard()
                raise QgsProcessingException(
                    tr("{0}\nNothing was captioned and nothing is kept; fix the key and run again.").format(exc)
                ) from exc
            if exc.kind == "canceled":
                raise QgsProcessingException(
                    tr("Canceled: {0} tile(s) are saved in {1}; run again with Resume to continue").format(
                        len(writer.done), output
                    )
                ) from exc
            raise QgsProcessingException(
                tr("{0}\n{1} tile(s) are saved in {2}; fix the problem and run again with Resume.").format(
                    exc, len(writer.done), output
                )
            ) from exc
        except RasterInputError as exc:
            raise QgsProcessingException(str(exc)) from exc
        finally:
            if not refused:
                # a run that captioned nothing keeps a previous OUTPUT unless it ended with no error
                kept = writer.finish(keep=completed and loop.stats.errors == 0)
        if not kept:
            raise QgsProcessingException(
                tr(
                    "No tile was captioned: {0} tile(s) failed. First error: {1}\n{2} was left as it was; fix the "
                    "problem and run again."
                ).format(stats.errors, stats.first_error, output)
            )
        return stats


def _tile_error_reporter(feedback: QgsProcessingFeedback) -> Callable[[str, str], None]:
    def report(tile_id: str, message: str) -> None:
        feedback.reportError(tr("Tile {0}: {1}").format(tile_id, message))

    return report


_POST_PROCESSORS: list = []  # Processing keeps only a raw pointer to post-processors


def _style_on_load(context: QgsProcessingContext, output: str) -> None:
    if not context.willLoadLayerOnCompletion(output):
        return
    from .layer_style import ChangeLayerPostProcessor

    processor = ChangeLayerPostProcessor()
    _POST_PROCESSORS.append(processor)
    details = context.layerToLoadOnCompletionDetails(output)
    details.name = tr("Change captions")
    details.setPostProcessor(processor)
