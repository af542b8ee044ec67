"""The algorithm dialog: counts the chips a run will send before it starts (less the tiles an existing OUTPUT already
holds when RESUME is ticked) and asks for confirmation above MAX_CHIPS (Processing itself refuses such runs), and
reports the result in the message bar, a demo-model run with a warning. :func:`preselect_rasters` picks two
different rasters for Before and After when the dialog opens from the toolbar, the older one as Before."""

from __future__ import annotations

import os

from processing.gui.AlgorithmDialog import AlgorithmDialog
from processing.tools import dataobjects
from qgis.core import Qgis, QgsProcessingException, QgsProcessingFeedback, QgsProject, QgsRasterLayer
from qgis.PyQt.QtWidgets import QMessageBox
from qgis.utils import iface

from .about import tr
from .backend_client import BackendClient, BackendError
from .core.dates import pick_pair
from .core.fields import LAYER_NAME, STATUS_OK, same_imagery
from .core.grid import DEFAULT_CHIP_SIZE

LIMIT_LABEL = "Ask before runs of more chips than"  # the settings dialog's and the algorithm's wording
DEMO_WARNING = (
    "Captions come from the demo model: it only knows synthetic scenes, so captions of real imagery are "
    "not meaningful. Point the CCExpert settings at a backend with a real model for real imagery."
)


def confirmation_text(count: int, limit: int) -> str:
    return tr(
        "This run will send {0} chips to the backend (more than the limit of {1} you set in '{2}'). Continue?"
    ).format(count, limit, tr(LIMIT_LABEL))


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
    for chip in plan.grid.chips(plan.bounds, plan.keep):
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
    def runAlgorithm(self):  # QGIS API name
        try:
            parameters = self.createProcessingParameters()
        except Exception:  # invalid widgets: let the base class highlight them
            return super().runAlgorithm()
        alg = self.algorithm()
        context = dataobjects.createContext()
        counted = self._count(alg, parameters, context)
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

    def _count(self, alg, parameters, context) -> tuple[int, int] | None:
        """(chips of the area, chips that will be sent) without running: with RESUME, the tiles an existing OUTPUT
        already holds with status ok are not sent again. The chip size comes from the backend when CHIP_SIZE is 0.
        None when the run cannot be planned (the run reports why)."""
        out_size = DEFAULT_CHIP_SIZE
        try:
            client = BackendClient(
                str(parameters.get(alg.BACKEND_URL) or ""),
                str(parameters.get(alg.AUTHCFG) or ""),
                timeout_s=5.0,
                retries=0,
            )
            out_size = int(client.info()["chip_size"])
        except (BackendError, KeyError, ValueError):
            pass  # the run itself reports the backend problem
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
        not_done = sum(1 for chip in plan.grid.chips(plan.bounds, plan.keep) if chip.tile_id not in done)
        if not_done <= int(parameters.get(alg.MAX_CHIPS) or 0):
            return plan.count, not_done  # under the limit anyway: no need to look at the pixels
        return plan.count, chips_to_send(plan, done, float(parameters.get(alg.MAX_NODATA, 0.5)))

    def finish(self, successful, result, context, feedback, in_place=False):
        super().finish(successful, result, context, feedback, in_place=in_place)
        if iface is None or not successful:
            return
        push_summary(iface.messageBar(), result)


def push_summary(bar, result: dict) -> None:
    """The run's counts in the message bar; a run of the demo model also gets a warning that says so."""
    demo = int(result.get("DEMO") or 0) == 1
    bar.pushMessage(
        tr("CCExpert"),
        tr("{0} tiles captioned, {1} changed, {2} errors, {3} skipped for nodata").format(
            result.get("CAPTIONED", 0),
            result.get("CHANGED", 0),
            result.get("ERRORS", 0),
            result.get("SKIPPED_NODATA", 0),
        ),
        level=Qgis.MessageLevel.Warning if result.get("ERRORS") else Qgis.MessageLevel.Success,
        duration=10,
    )
    if demo:
        bar.pushMessage(tr("CCExpert"), tr(DEMO_WARNING), level=Qgis.MessageLevel.Warning, duration=0)
