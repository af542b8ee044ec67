"""The algorithm dialog: counts the chips a run will send before it starts (less the tiles an existing OUTPUT already
holds when RESUME is ticked) and asks for confirmation above MAX_CHIPS (Processing itself refuses such runs), and
reports the result in the message bar, a demo-model run with a warning. :func:`preselect_rasters` picks two
different rasters for Before and After when the dialog opens from the toolbar, the older one as Before."""

from __future__ import annotations

import os
from datetime import datetime

from processing.gui.AlgorithmDialog import AlgorithmDialog
from processing.tools import dataobjects
from qgis.core import (
    Qgis,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputLayerDefinition,
    QgsProject,
    QgsProperty,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QLabel, QMessageBox
from qgis.utils import iface

from .about import chips_text, tr
from .backend_client import BackendClient, BackendError
from .compat import parameters_without_defaults
from .core.dates import parse_date, pick_pair
from .core.fields import LAYER_NAME, STATUS_OK
from .core.grid import DEFAULT_CHIP_SIZE
from .core.gsd import gsd_warning, matching_chip_size
from .core.output_names import default_output_path
from .core.sources import same_imagery

LIMIT_LABEL = "Ask before runs of more chips than"  # the settings dialog's and the algorithm's wording
DEMO_WARNING = (
    "Captions come from the demo model: it only knows synthetic scenes, so captions of real imagery are "
    "not meaningful. Point the CCExpert settings at a backend with a real model for real imagery."
)
DEMO_SHORT = "demo model"
GSD_SHORT = "pixel size off"


def confirmation_text(count: int, limit: int) -> str:
    return tr("This run will send {0} to the backend (more than the limit of {1} you set in '{2}'). Continue?").format(
        chips_text(count), limit, tr(LIMIT_LABEL)
    )


def captioned_tiles(path: str, layer_name: str = LAYER_NAME) -> set[str]:
    """Tile ids with status ok in an existing output (what a resume keeps and does not send again); empty when the
    file or layer is not there or cannot be read (the run itself reports that)."""
    if not path or not os.path.isfile(path):
        return set()
    from osgeo import ogr

    try:
        ds = ogr.Open(path)
    except RuntimeError:  # GDAL exceptions switched on
        return set()
    if ds is None:
        return set()
    layer = ds.GetLayerByName(layer_name)
    if layer is None:
        return set()
    defn = layer.GetLayerDefn()
    if defn.GetFieldIndex("tile_id") < 0 or defn.GetFieldIndex("status") < 0:
        return set()
    done = set()
    for feature in layer:
        if feature.GetField("status") == STATUS_OK and feature.GetField("tile_id"):
            done.add(str(feature.GetField("tile_id")))
    return done


def chips_to_send(plan, done: set[str], max_nodata: float) -> int:
    """Chips a run will send: not kept by a resume, and under the nodata limit (estimated from a coarse read of
    each chip, the way the run's nodata rule will see it; an unreadable chip is counted, the run reports it)."""
    from .reader import RasterInputError

    count = 0
    for chip in plan.chips():
        if chip.tile_id in done:
            continue
        try:
            skipped = max(plan.reader.nodata_estimate(chip)) > max_nodata
        except RasterInputError:
            skipped = False
        count += not skipped
    return count


def raster_date(layer) -> str | None:
    """The acquisition date a raster's metadata carries (TIFFTAG_DATETIME, ACQUISITIONDATETIME), or None."""
    from osgeo import gdal

    path = layer.source().split("|", 1)[0]
    try:
        ds = gdal.Open(path)
    except RuntimeError:
        return None
    if ds is None:
        return None
    for key, domain in (("ACQUISITIONDATETIME", "IMAGERY"), ("ACQUISITIONDATETIME", ""), ("TIFFTAG_DATETIME", "")):
        value = ds.GetMetadataItem(key, domain)
        if value:
            return str(value)
    return None


def source_line(layer) -> str:
    """What tells two layers of the same name apart under the Before/After selectors: the file's folder and name,
    and its acquisition date (from its metadata) or else the date the file was last modified."""
    if layer is None:
        return ""
    path = layer.source().split("|", 1)[0]
    date = raster_date(layer)
    parsed = parse_date(date)
    if parsed:
        when = tr("acquired {0}").format("-".join(f"{part:02d}" for part in parsed if part))
    elif date:
        when = tr("acquired {0}").format(date)
    else:
        try:
            when = tr("file modified {0}").format(
                datetime.fromtimestamp(os.path.getmtime(path)).strftime("%Y-%m-%d %H:%M")
            )
        except OSError:
            when = tr("not a local file")
    return f"{path} · {when}"


def preselect_rasters(project: QgsProject | None = None) -> dict:
    """{"BEFORE": layer, "AFTER": layer} for the dialog opened from the toolbar: two different raster files of the
    project (a file loaded twice counts once), the older as Before by the dates in their metadata or names, else by
    what their names say ("before"/"after", "t1"/"t2", "A"/"B"), else the one added first. One raster: Before only;
    none: {}."""
    project = project or QgsProject.instance()
    tree = [node.layer() for node in project.layerTreeRoot().findLayers()]
    ordered = [layer for layer in reversed(tree) if layer is not None]  # bottom first: usually added first
    ordered += [layer for layer in project.mapLayers().values() if layer not in ordered]
    rasters: list[QgsRasterLayer] = []
    for layer in ordered:
        if not isinstance(layer, QgsRasterLayer) or layer.providerType() != "gdal" or not layer.isValid():
            continue
        if any(same_imagery(layer.source(), other.source()) for other in rasters):
            continue
        rasters.append(layer)
    if not rasters:
        return {}
    if len(rasters) == 1:
        return {"BEFORE": rasters[0]}
    picked = pick_pair([(layer.name(), raster_date(layer)) for layer in rasters])
    if picked is None:  # cannot happen with two or more
        return {}
    return {"BEFORE": rasters[picked[0]], "AFTER": rasters[picked[1]]}


class DescribeChangesDialog(AlgorithmDialog):
    """The Processing dialog, plus what an analyst needs before a run: the file and date under Before/After, the
    parameter checks before the backend is asked anything, the pixel-size warning with the matching chip size
    offered, the chip-count confirmation, and a new default OUTPUT file for each run."""

    SOURCE_PARAMETERS = ("BEFORE", "AFTER")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []  # warnings the analyst accepted before the run, repeated in the message bar
        self._default_output = str(self.algorithm().parameterDefinition("OUTPUT").defaultValue() or "")
        self.source_labels: dict[str, QLabel] = {}
        self._add_source_labels()

    def showEvent(self, event):  # Qt API name
        """Wide enough that no parameter label is cut: QGIS restores the last size on show, which for a new user
        is a small default; a larger size the analyst chose is kept, and the screen is never exceeded."""
        super().showEvent(event)
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        width, height = 1000, 740
        if screen is not None:
            width, height = min(width, screen.width()), min(height, screen.height() - 40)
        if self.width() < width or self.height() < height:
            self.resize(max(self.width(), width), max(self.height(), height))

    # -- file and date under the Before/After selectors ---------------------------------------------------
    def _add_source_labels(self) -> None:
        wrappers = getattr(self.mainWidget(), "wrappers", {})
        for name in self.SOURCE_PARAMETERS:
            wrapper = wrappers.get(name)
            widget = wrapper.wrappedWidget() if wrapper is not None and hasattr(wrapper, "wrappedWidget") else None
            layout = widget.parentWidget().layout() if widget is not None and widget.parentWidget() else None
            if layout is None or layout.indexOf(widget) < 0 or not hasattr(layout, "insertWidget"):
                continue  # another Processing layout: the selector stays as QGIS draws it
            label = QLabel()
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.insertWidget(layout.indexOf(widget) + 1, label)
            self.source_labels[name] = label
            wrapper.widgetValueHasChanged.connect(lambda _w, n=name: self._update_source_label(n))
            self._update_source_label(name)

    def _update_source_label(self, name: str) -> None:
        label = self.source_labels.get(name)
        if label is None:
            return
        try:
            parameters = parameters_without_defaults(self)
        except Exception:  # a half-filled form: show nothing rather than fail
            parameters = {}
        context = dataobjects.createContext()  # owns a layer loaded from a path: kept while it is read
        text = ""
        try:
            layer = self.algorithm().parameterAsRasterLayer(parameters, name, context) if parameters.get(name) else None
            text = source_line(layer) if layer is not None else ""
        except (RuntimeError, QgsProcessingException):  # a layer being removed from the project
            text = ""
        label.setText(f"<small>{text}</small>" if text else "")

    def setParameters(self, parameters):  # QGIS API name
        super().setParameters(parameters)
        for name in self.source_labels:
            self._update_source_label(name)

    def _log_tail(self, lines: int = 4) -> str:
        """The last lines of the dialog's Log tab: the reason a run failed."""
        return "\n".join(_log_lines(self)[-lines:])

    # -- run ----------------------------------------------------------------------------------------------
    def runAlgorithm(self):  # QGIS API name
        try:
            parameters = self.createProcessingParameters()
        except Exception:  # invalid widgets: let the base class highlight them
            return super().runAlgorithm()
        alg = self.algorithm()
        context = dataobjects.createContext()
        ok, _message = alg.checkParameterValues(parameters, context)
        if not ok:  # Before = After, no overlap...: the base class says why, and the backend is never asked
            return super().runAlgorithm()
        self._fresh_output(alg, parameters, context)
        info = self._backend_info(alg, parameters)
        out_size = model_chip_size(info)
        self.notes = []
        if info and not self._check_pixel_size(alg, parameters, context, info, out_size):
            return None
        counted = self._count(alg, parameters, context, out_size)
        limit = int(parameters.get(alg.MAX_CHIPS) or 0)
        if counted is not None and limit:
            total, to_send = counted
            if to_send > limit:
                answer = QMessageBox.question(
                    self,
                    tr("Describe changes"),
                    confirmation_text(to_send, limit),
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                    QMessageBox.StandardButton.No,
                )
                if answer != QMessageBox.StandardButton.Yes:
                    return None
            if total > limit:  # confirmed, or a resume sends no more than the limit: the algorithm counts them all
                parameters[alg.MAX_CHIPS] = total
        self.setParameters(parameters)
        return super().runAlgorithm()

    def _fresh_output(self, alg, parameters, context) -> None:
        """A second run from the same dialog does not replace the first one's default file: the default OUTPUT
        moves to a new name (a file the analyst chose, or a Resume, stays as it is)."""
        if parameters.get(alg.RESUME) or not self._default_output:
            return
        try:
            path = alg.parameterAsOutputLayer(parameters, alg.OUTPUT, context)
        except QgsProcessingException:
            return
        if os.path.abspath(path) != os.path.abspath(self._default_output) or not os.path.exists(path):
            return
        new = default_output_path(os.path.dirname(path), datetime.now())
        value = parameters.get(alg.OUTPUT)
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            value.sink = QgsProperty.fromValue(new)
        else:
            parameters[alg.OUTPUT] = new
        self._default_output = new

    def _backend_info(self, alg, parameters) -> dict | None:
        """The backend's /v1/info, or None when it cannot be reached now (the run itself reports why)."""
        try:
            client = BackendClient(
                str(parameters.get(alg.BACKEND_URL) or ""),
                str(parameters.get(alg.AUTHCFG) or ""),
                timeout_s=5.0,
                retries=0,
            )
            return client.info()
        except BackendError:
            return None

    def _check_pixel_size(self, alg, parameters, context, info: dict, out_size: int) -> bool:
        """Before the run: when the chips give the model a pixel size far from its training one (/v1/info
        ``gsd_m``), say so and offer the chip size that matches. False when the analyst cancels."""
        try:
            plan = alg.plan(parameters, context, QgsProcessingFeedback(), out_size)
        except QgsProcessingException:
            return True  # the run reports it
        from .run_feedback import pixel_size_m

        pixel = pixel_size_m(plan.reader.before)
        chip = plan.grid.chip_size
        matching = matching_chip_size(pixel, chip, out_size, info.get("gsd_m"))
        text = gsd_warning(pixel, chip, out_size, info.get("gsd_m"))
        if matching is None or not text:
            return True
        choice = ask_pixel_size(self, text, chip, matching)
        if choice == "cancel":
            return False
        if choice == "match":
            parameters[alg.CHIP_SIZE] = matching
        else:
            self.notes.append(text)
        return True

    def _count(self, alg, parameters, context, out_size: int) -> tuple[int, int] | None:
        """(chips of the area, chips that will be sent) without running: with RESUME, the tiles an existing OUTPUT
        already holds with status ok are not sent again. None when the run cannot be planned (the run reports
        why)."""
        try:
            plan = alg.plan(parameters, context, QgsProcessingFeedback(), out_size)
        except QgsProcessingException:
            return None  # the run reports it
        done: set[str] = set()
        if parameters.get(alg.RESUME):
            try:
                output = alg.parameterAsOutputLayer(parameters, alg.OUTPUT, context)
            except QgsProcessingException:
                output = ""
            done = captioned_tiles(output)
        not_done = sum(1 for chip in plan.chips() if chip.tile_id not in done)
        if not_done <= int(parameters.get(alg.MAX_CHIPS) or 0):
            return plan.count, not_done  # under the limit anyway: no need to look at the pixels
        return plan.count, chips_to_send(plan, done, float(parameters.get(alg.MAX_NODATA, 0.5)))

    def finish(self, successful, result, context, feedback, in_place=False):
        super().finish(successful, result, context, feedback, in_place=in_place)
        if not successful:
            from .diagnostics import record_error

            record_error(self._log_tail())  # for "Copy diagnostics" in the settings
        if iface is None or not successful:
            return
        push_summary(iface.messageBar(), result, self.notes)


def _log_lines(dialog) -> list[str]:
    from qgis.PyQt.QtWidgets import QTextEdit

    log = dialog.findChild(QTextEdit, "txtLog")
    return [line for line in (log.toPlainText() if log is not None else "").splitlines() if line.strip()]


def model_chip_size(info: dict | None) -> int:
    """The backend's chip size, or the CCExpert default when it cannot be asked now."""
    try:
        return int((info or {})["chip_size"])
    except (KeyError, TypeError, ValueError):
        return DEFAULT_CHIP_SIZE


def ask_pixel_size(parent, text: str, chip: int, matching: int) -> str:
    """ "match" (run with ``matching`` px chips), "keep" (run as set) or "cancel"."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(tr("Describe changes"))
    box.setText(tr("The pixel size does not suit the model."))
    box.setInformativeText(text)
    use = box.addButton(tr("Use {0} px chips").format(matching), QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton(tr("Run with {0} px chips").format(chip), QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(use)
    box.exec()
    clicked = box.clickedButton()
    return "match" if clicked is use else "keep" if clicked is keep else "cancel"


def push_summary(bar, result: dict, notes: list[str] | tuple[str, ...] = ()) -> None:
    """The run's counts in one message bar line short enough not to wrap beside the bar's buttons: a demo-model
    run and a pixel-size warning the analyst accepted are flagged in the title, their full text is under the
    bar's "Show more" button, so the counts are never hidden behind a second message."""
    demo = int(result.get("DEMO") or 0) == 1
    text = tr("{0} captioned, {1} changed, {2} errors, {3} skipped (nodata)").format(
        result.get("CAPTIONED", 0),
        result.get("CHANGED", 0),
        result.get("ERRORS", 0),
        result.get("SKIPPED_NODATA", 0),
    )
    flags, more = [], []
    if demo:
        flags.append(tr(DEMO_SHORT))
        more.append(tr(DEMO_WARNING))
    if notes:
        flags.append(tr(GSD_SHORT))
        more.extend(notes)
    title = tr("CCExpert") + (f" ({', '.join(flags)})" if flags else "")
    warn = bool(result.get("ERRORS")) or bool(flags)
    level = Qgis.MessageLevel.Warning if warn else Qgis.MessageLevel.Success
    if more:
        bar.pushMessage(title, text, "\n\n".join(more), level, 0)
    else:
        bar.pushMessage(title, text, level=level, duration=10)
