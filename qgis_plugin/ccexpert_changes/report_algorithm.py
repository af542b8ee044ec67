"""``ccexpert:create_report``: the HTML report of a change-captions layer, from inside QGIS.

The report is made by ``ccexpert report`` (``ccexpert.report`` in the backend package), which reads the rasters
with rasterio and encodes the images with Pillow: neither ships with QGIS, and a second implementation on GDAL alone
would drift from the first. So this algorithm runs that command (a ``ccexpert`` found on PATH, or the one given)
as a separate process, never imports it, and says what to install when it is missing. Qt's QProcess runs it (no
shell; cancel stops it).
"""

from __future__ import annotations

import os
import shutil

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)
from qgis.PyQt.QtCore import QProcess, QUrl
from qgis.PyQt.QtGui import QDesktopServices, QIcon

from .about import icon_path, tr
from .compat import ADVANCED, VECTOR_POLYGON
from .core.fields import LAYER_NAME

REPORT_TIMEOUT_S = 600  # a report of thousands of tiles reads every changed chip: minutes, not hours


def find_command(given: str | None) -> str:
    """The ``ccexpert`` executable to run: the one given, else the one on PATH; QgsProcessingException saying what
    to install when there is none."""
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise QgsProcessingException(tr("The ccexpert command {0} is not an executable file").format(given))
        return given
    found = shutil.which("ccexpert")
    if found is None:
        raise QgsProcessingException(
            tr(
                "Creating the report needs the ccexpert command (the backend's Python package: pip install "
                "ccexpert, which brings rasterio and Pillow) on this computer: install it, or give its ccexpert "
                "executable in the 'ccexpert command' parameter"
            )
        )
    return found


def gpkg_of(layer) -> str:
    """The GeoPackage file behind a change-captions layer; QgsProcessingException for any other layer."""
    path, _, options = layer.source().partition("|")
    if (
        layer.providerType() != "ogr"
        or not path.lower().endswith(".gpkg")
        or (options and f"layername={LAYER_NAME}" not in options)
    ):
        raise QgsProcessingException(
            tr("{0} is not a change-captions layer (a GeoPackage made by Describe changes)").format(layer.name())
        )
    return path


class CreateReportAlgorithm(QgsProcessingAlgorithm):
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"
    COMMAND = "COMMAND"
    MAX_TILES = "MAX_TILES"
    OPEN = "OPEN"

    def name(self) -> str:
        return "create_report"

    def displayName(self) -> str:  # QGIS API name
        return tr("Create report")

    def shortHelpString(self) -> str:  # QGIS API name
        return tr(
            "A self-contained HTML page of a change-captions layer: the rasters' dates, an overview map with the "
            "area of interest, a before/after swipe for each changed tile and a table of all tiles. Made by the "
            "ccexpert report command of the backend package, which must be installed on this computer."
        )

    def icon(self) -> QIcon:
        return QIcon(icon_path())

    def createInstance(self) -> CreateReportAlgorithm:  # QGIS API name
        return CreateReportAlgorithm()

    def initAlgorithm(self, config=None) -> None:  # QGIS API name
        self.addParameter(QgsProcessingParameterVectorLayer(self.INPUT, tr("Change captions layer"), [VECTOR_POLYGON]))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, tr("Report"), tr("HTML files (*.html)")))
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_TILES, tr("Most changed tiles shown with imagery"), defaultValue=200, minValue=1
            )
        )
        command = QgsProcessingParameterString(  # a string: a file parameter refuses names without an extension
            self.COMMAND, tr("ccexpert command (empty: found on PATH)"), optional=True
        )
        command.setFlags(command.flags() | ADVANCED)
        self.addParameter(command)
        self.addParameter(QgsProcessingParameterBoolean(self.OPEN, tr("Open the report when done"), True))

    def processAlgorithm(self, parameters, context, feedback):  # QGIS API name
        layer = self.parameterAsVectorLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(tr("The change captions layer is missing"))
        gpkg = gpkg_of(layer)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if os.path.abspath(output) == os.path.abspath(gpkg):
            raise QgsProcessingException(tr("The report would replace the layer's own GeoPackage; pick an .html file"))
        command = find_command(self.parameterAsString(parameters, self.COMMAND, context).strip() or None)
        max_tiles = self.parameterAsInt(parameters, self.MAX_TILES, context)
        args = ["report", gpkg, "-o", output, "--max-tiles", str(max_tiles)]
        feedback.pushInfo(tr("Running {0} {1}").format(command, " ".join(args)))
        process = QProcess()
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.start(command, args)
        if not process.waitForStarted(30_000):
            raise QgsProcessingException(tr("Could not start {0}: {1}").format(command, process.errorString()))
        waited = 0.0
        while not process.waitForFinished(200):
            waited += 0.2
            if feedback.isCanceled() or waited > REPORT_TIMEOUT_S:
                process.kill()
                process.waitForFinished(5_000)
                raise QgsProcessingException(
                    tr("Canceled.") if feedback.isCanceled() else tr("The report took over {0} s").format(waited)
                )
        text = bytes(process.readAll()).decode("utf-8", "replace").strip()
        for line in text.splitlines():
            feedback.pushInfo(line)
        if process.exitStatus() != QProcess.ExitStatus.NormalExit or process.exitCode() != 0:
            last = text.splitlines()[-1] if text else tr("exit code {0}").format(process.exitCode())
            raise QgsProcessingException(tr("The report could not be made: {0}").format(last))
        self._open = self.parameterAsBoolean(parameters, self.OPEN, context)
        self._output = output
        return {self.OUTPUT: output}

    def postProcessAlgorithm(self, context, feedback):  # QGIS API name
        """Open the report in the browser (on the main thread, after the run)."""
        if getattr(self, "_open", False):
            QDesktopServices.openUrl(QUrl.fromLocalFile(self._output))
        return {self.OUTPUT: getattr(self, "_output", None)}
