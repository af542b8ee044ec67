"""Processing algorithm ``ccexpert:describe_changes``: the one code path behind the toolbox, batch mode, the
model designer, ``processing.run`` and ``qgis_process``.

Parameters are read once (``planning.DescribeParameters``). Plan (no network, cheap; ``planning.make_plan``): refuse
Before = After, open and check both rasters with GDAL, describe the area (where they overlap, cut to the extent such
as the map canvas and to the area of interest, in the before CRS), lay the chip grid over it and count the chips.
Run: check OUTPUT (a .gpkg that is none of the inputs), fetch ``/v1/info``, check the API key
(``/v1/auth/check``), compute the shared stretch, take the output's lock, then hand the chips to the run driver
shared with ``ccexpert describe`` (``core.driver.drive``: batch, bytes and in-flight from ``/v1/info``, the keep
rule; ``core.run_loop``: rows written in grid order). Nothing is written before every check passed; an existing
OUTPUT is replaced only once the run captions its first tile (``output.TileWriter``, staging in
``core.output_contract``), and RESUME refuses an OUTPUT made from other inputs or without a readable fingerprint
unless RESUME_FORCE. Every count the run reports is the layer's.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from qgis.core import (
    Qgis,
    QgsMessageLog,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterAuthConfig,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)
from qgis.PyQt.QtGui import QIcon

from . import settings
from .about import LOG_TAG, chips_text, help_url, icon_path, tr
from .backend_client import BackendClient, BackendError
from .chips import BackendCaptioner, ChipEncoder
from .compat import ADVANCED, CAN_CANCEL, DOUBLE, INTEGER, VECTOR_POLYGON
from .core.driver import MAX_IN_FLIGHT, Hooks, RunPlan, drive, model_label, settings_from_info
from .core.fields import run_metadata
from .core.grid import DEFAULT_CHIP_SIZE
from .core.output_lock import OutputBusy, OutputLock
from .core.output_names import default_output_path
from .core.run_loop import RunSettings, RunStats
from .core.sources import source_identity
from .output import OutputError, TileWriter, check_output
from .planning import DescribeParameters, Plan, make_plan
from .qthreads import QThreadExecutor
from .reader import DEFAULT_BANDS, RasterInputError
from .run_feedback import (
    RunProgress,
    counts_of_layer,
    finish_layer,
    style_on_load,
    tile_error_reporter,
    warn_gsd,
    write_areas,
)


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
    AREAS = "AREAS"
    MAX_CHIPS = "MAX_CHIPS"
    CONTEXT = "CONTEXT"
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
            "<p><b>Change areas</b> (on by default): a second layer, change_areas, in the same GeoPackage: "
            "neighbouring changed tiles of one kind of change (field Kind of change) as one area, with its number "
            "of tiles and objects.</p>"
            "<p><b>Context note</b> (advanced, at most 300 characters on one line): stored with the run and shown in "
            "its report; a general vision-language backend reads it before its prompt, CCExpert ignores it.</p>"
        )

    def icon(self) -> QIcon:
        return QIcon(icon_path())

    def helpUrl(self) -> str:  # QGIS API name
        return help_url()

    def createInstance(self) -> DescribeChangesAlgorithm:
        return DescribeChangesAlgorithm()

    def flags(self):
        return super().flags() | CAN_CANCEL

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
                [VECTOR_POLYGON],
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
                INTEGER,
                0,
                minValue=0,
                maxValue=8192,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.OVERLAP,
                tr("Overlap between chips (pixels)"),
                INTEGER,
                0,
                minValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_NODATA,
                tr("Largest nodata share (0-1) of a chip that is still captioned"),
                DOUBLE,
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
            INTEGER,
            0,
            minValue=0,
        )
        self.addParameter(batch)
        in_flight = QgsProcessingParameterNumber(
            self.IN_FLIGHT,
            tr("Requests at the backend at once (0 = the capacity the backend advertises)"),
            INTEGER,
            0,
            minValue=0,
            maxValue=MAX_IN_FLIGHT,
        )
        in_flight.setFlags(in_flight.flags() | ADVANCED)
        self.addParameter(in_flight)
        self.addParameter(
            QgsProcessingParameterBoolean(self.RESUME, tr("Resume: keep tiles already captioned in the output"), False)
        )
        force = QgsProcessingParameterBoolean(
            self.RESUME_FORCE, tr("Resume even if the output was made from other inputs (bands, stretch, model)"), False
        )
        force.setFlags(force.flags() | ADVANCED)
        self.addParameter(force)
        limit = QgsProcessingParameterNumber(
            self.MAX_CHIPS,
            tr("Ask before runs of more chips than"),
            INTEGER,
            settings.max_chips(),
            minValue=1,
        )
        limit.setFlags(limit.flags() | ADVANCED)
        batch.setFlags(batch.flags() | ADVANCED)
        self.addParameter(limit)
        note = QgsProcessingParameterString(
            self.CONTEXT, tr("Context note (e.g. after the May 2011 tornado)"), optional=True
        )
        note.setFlags(note.flags() | ADVANCED)
        self.addParameter(note)
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.AREAS, tr("Also write change areas (layer change_areas: neighbouring tiles of one kind)"), True
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.OUTPUT,
                tr("Change captions"),
                VECTOR_POLYGON,
                # a new file in a folder the analyst keeps: QGIS deletes its temporary outputs on exit
                default_output_path(settings.output_folder(), datetime.now()),
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

    def checkParameterValues(self, parameters, context):  # QGIS API name
        """Before = After, rasters that do not overlap, an area of interest outside them: refused before the
        backend is contacted (the dialog, processing.run and qgis_process all ask this first)."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            params = DescribeParameters.read(self, parameters, context)
            make_plan(params, context, QgsProcessingFeedback(), params.chip_size or DEFAULT_CHIP_SIZE)
        except QgsProcessingException as exc:
            return False, str(exc)
        return True, ""

    # -- planning (shared with the dialog's confirmation) -------------------------------------------------
    def plan(self, parameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback, out_size: int) -> Plan:
        """What a run will do, without the network (shared with the dialog's confirmation): see ``planning``."""
        return make_plan(DescribeParameters.read(self, parameters, context), context, feedback, out_size)

    # -- run ----------------------------------------------------------------------------------------------
    @staticmethod
    def _check_output(params: DescribeParameters) -> str:
        """OUTPUT, refused before anything else when it is not a .gpkg or is one of the inputs."""
        inputs = {
            "BEFORE raster": params.before.source() if params.before is not None else None,
            "AFTER raster": params.after.source() if params.after is not None else None,
            "AOI": params.aoi_path,
        }
        try:
            check_output(params.output, inputs)
            os.makedirs(os.path.dirname(os.path.abspath(params.output)), exist_ok=True)  # the default folder, first run
        except OutputError as exc:
            raise QgsProcessingException(str(exc)) from exc
        except OSError as exc:
            raise QgsProcessingException(
                tr("Cannot create the folder of OUTPUT {0}: {1}").format(params.output, exc)
            ) from exc
        return params.output

    def processAlgorithm(self, parameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback):
        params = DescribeParameters.read(self, parameters, context)  # every parameter, once
        output = self._check_output(params)
        client, info = self._connect(params, feedback)
        out_size = int(info["chip_size"])
        plan = make_plan(params, context, feedback, out_size)
        gsd_note = warn_gsd(plan.reader.before, plan.grid.chip_size, out_size, info, feedback)
        feedback.pushInfo(
            tr("{0} of {1} px (stride {2}) over the area of interest").format(
                chips_text(plan.count), plan.grid.chip_size, plan.grid.stride
            )
        )
        stretch = plan.reader.compute_stretch(plan.bounds)
        if not stretch.passthrough:
            feedback.pushInfo(
                tr("8-bit stretch shared by both dates (2-98 %): low {0}, high {1}").format(
                    [round(v, 3) for v in stretch.lo], [round(v, 3) for v in stretch.hi]
                )
            )
        model = model_label(info)
        if params.context_note and not info.get("uses_context", False):
            feedback.pushInfo(tr("Context note: stored with the run; model {0} does not read it").format(model))
        run_id = uuid.uuid4().hex[:12]
        with self._locked(output):  # one run per output: a second one is refused before it writes anything
            writer = self._writer(params, feedback, plan, stretch, model)
            self._check_limit(params, plan, writer)
            common = {"model": str(info.get("model_name") or ""), "backend": client.base_url, "run_id": run_id}
            hooks = Hooks(
                on_progress=RunProgress(feedback, plan.count),
                is_canceled=feedback.isCanceled,
                on_notice=feedback.pushInfo,
                on_tile_error=tile_error_reporter(feedback),
                executor=QThreadExecutor,  # QGIS request timeouts need threads Qt started
                on_loop=lambda loop: setattr(client, "on_retry", loop.waiting),  # an outage shows in the progress
            )
            try:
                stats = self._run(
                    RunPlan(plan.chips(), plan.count, common),
                    ChipEncoder(plan.reader, params.max_nodata),
                    BackendCaptioner(client, params.context_note),
                    writer,
                    self._settings(params, feedback, info),
                    hooks,
                )
            finally:
                # break client -> loop -> captioner -> client: a cycle holding the feedback would be collected late,
                # after QGIS is gone (a crash at exit)
                client.on_retry = None
            counts = counts_of_layer(output, stats, feedback)  # after a Resume: the layer's, not this run's
            finish_layer(
                output, info, counts, plan.reader, client.base_url, feedback, notes=[gsd_note] if gsd_note else []
            )
            if params.areas:
                write_areas(output, feedback, plan.grid)
        style_on_load(context, output, plan.reader.after_src.GetDescription())
        summary = tr(
            "{0} tiles captioned ({1} changed), {2} errors, {3} skipped for nodata in the layer; {4} captioned in "
            "this run, {5} kept from before"
        ).format(
            counts["captioned"],
            counts["changed"],
            counts["errors"],
            counts["skipped_nodata"],
            stats.captioned,
            stats.resumed,
        )
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
            "CAPTIONED": counts["captioned"],
            "CHANGED": counts["changed"],
            "ERRORS": counts["errors"],
            "SKIPPED_NODATA": counts["skipped_nodata"],
            "RESUMED": stats.resumed,
            "DEMO": int(bool(info.get("demo"))),
            "MODEL": model,
            "RUN_ID": run_id,
        }

    @staticmethod
    @contextmanager
    def _locked(output: str) -> Iterator[OutputLock]:
        """The output's lock for the run (``core.output_lock``), given back on every way out."""
        lock = OutputLock(output)
        try:
            lock.acquire()
        except (OutputBusy, OSError) as exc:
            raise QgsProcessingException(str(exc)) from exc
        try:
            yield lock
        finally:
            lock.release()

    @staticmethod
    def _connect(params: DescribeParameters, feedback) -> tuple[BackendClient, dict]:
        """The backend's info, and its verdict on the API key, before anything is written."""
        url = params.backend_url or settings.backend_url()
        authcfg = params.authcfg
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

    @staticmethod
    def _writer(params: DescribeParameters, feedback, plan: Plan, stretch, model: str) -> TileWriter:
        output, resume, force = params.output, params.resume, params.force
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
                aoi=plan.aoi_wkt,
                context=params.context_note,
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

    @staticmethod
    def _check_limit(params: DescribeParameters, plan: Plan, writer: TileWriter) -> None:
        """Scripts and qgis_process stop above the limit (the dialog asks instead); tiles a resume keeps are not
        sent, so they do not count."""
        limit = params.max_chips
        to_send = plan.count
        if writer.done:
            to_send = sum(1 for chip in plan.chips() if chip.tile_id not in writer.done)
        if to_send > limit:
            writer.discard()
            writer.finish(keep=False)
            raise QgsProcessingException(
                tr(
                    'This run needs {0} chips, more than the {1} of "Ask before runs of more chips than". Choose a '
                    "smaller area of interest or a larger chip size, or raise that limit."
                ).format(to_send, limit)
            )

    @staticmethod
    def _settings(params: DescribeParameters, feedback, info: dict) -> RunSettings:
        """Pairs per request and requests in flight: what the user set, else what the backend advertises."""
        run_settings = settings_from_info(info, params.batch_size, params.in_flight)
        if run_settings.in_flight > 1:
            feedback.pushInfo(
                tr("{0} requests of up to {1} chip pairs at the backend at once").format(
                    run_settings.in_flight, run_settings.batch_size
                )
            )
        return run_settings

    @staticmethod
    def _run(run: RunPlan, prepare, captioner, writer: TileWriter, settings: RunSettings, hooks: Hooks) -> RunStats:
        """The one driver (``core.driver.drive``); every way it can stop becomes one message that says what is kept
        and what to do."""
        output = writer.target
        try:
            result = drive(run, prepare, captioner, writer, settings, hooks)
        except RasterInputError as exc:
            raise QgsProcessingException(str(exc)) from exc
        exc = result.aborted
        if exc is not None and exc.kind == "refused_key":  # no output at all (or the previous one as it was)
            raise QgsProcessingException(
                tr("{0}\nNothing was captioned and nothing is kept; fix the key and run again.").format(exc)
            ) from exc
        if exc is not None and exc.kind == "canceled":
            raise QgsProcessingException(
                tr("Canceled: {0} tile(s) are saved in {1}; run again with Resume to continue").format(
                    len(writer.done), output
                )
            ) from exc
        if exc is not None:
            raise QgsProcessingException(
                tr("{0}\n{1} tile(s) are saved in {2}; fix the problem and run again with Resume.").format(
                    exc, len(writer.done), output
                )
            ) from exc
        stats = result.stats
        if not result.held:
            raise QgsProcessingException(
                tr(
                    "No tile was captioned: {0} tile(s) failed. First error: {1}\n{2} was left as it was; fix the "
                    "problem and run again."
                ).format(stats.errors, stats.first_error, output)
            )
        return stats
