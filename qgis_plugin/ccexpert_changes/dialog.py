"""The algorithm dialog: counts the chips before a run and asks for confirmation above MAX_CHIPS (Processing
itself refuses such runs), and reports the result in the message bar."""

from __future__ import annotations

from processing.gui.AlgorithmDialog import AlgorithmDialog
from processing.tools import dataobjects
from qgis.core import Qgis, QgsProcessingException, QgsProcessingFeedback
from qgis.PyQt.QtWidgets import QMessageBox
from qgis.utils import iface

from .about import tr
from .client import BackendClient, BackendError

FALLBACK_CHIP_SIZE = 384


class DescribeChangesDialog(AlgorithmDialog):
    def runAlgorithm(self):  # noqa: N802 - QGIS API name
        try:
            parameters = self.createProcessingParameters()
        except Exception:  # invalid widgets: let the base class highlight them
            return super().runAlgorithm()
        alg = self.algorithm()
        context = dataobjects.createContext()
        count = self._count(alg, parameters, context)
        limit = int(parameters.get(alg.MAX_CHIPS) or 0)
        if count is not None and limit and count > limit:
            answer = QMessageBox.question(
                self,
                tr("Describe changes"),
                tr("This run will send {0} chips to the backend (limit {1}). Continue?").format(count, limit),
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return None
            parameters[alg.MAX_CHIPS] = count
            self.setParameters(parameters)
        return super().runAlgorithm()

    def _count(self, alg, parameters, context) -> int | None:
        """Chip count without running; the chip size comes from the backend when CHIP_SIZE is 0."""
        out_size = FALLBACK_CHIP_SIZE
        try:
            client = BackendClient(str(parameters.get(alg.BACKEND_URL) or ""), str(parameters.get(alg.AUTHCFG) or ""),
                                   timeout_s=5.0, retries=0)
            out_size = int(client.info()["chip_size"])
        except (BackendError, KeyError, ValueError):
            pass  # the run itself reports the backend problem
        try:
            return alg.plan(parameters, context, QgsProcessingFeedback(), out_size).count
        except QgsProcessingException:
            return None  # the run reports it

    def finish(self, successful, result, context, feedback, in_place=False):
        super().finish(successful, result, context, feedback, in_place=in_place)
        if iface is None or not successful:
            return
        iface.messageBar().pushMessage(
            tr("CCExpert"),
            tr("{0} tiles captioned, {1} changed, {2} errors, {3} skipped for nodata").format(
                result.get("CAPTIONED", 0), result.get("CHANGED", 0), result.get("ERRORS", 0),
                result.get("SKIPPED_NODATA", 0)),
            level=Qgis.MessageLevel.Warning if result.get("ERRORS") else Qgis.MessageLevel.Success,
            duration=10,
        )
