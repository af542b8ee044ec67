"""Processing provider ``ccexpert``."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .about import icon_path, plugin_version, tr


class CCExpertProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "ccexpert"

    def name(self) -> str:
        return tr("CCExpert change captioning")

    def longName(self) -> str:
        return tr("CCExpert change captioning {0}").format(plugin_version())

    def icon(self) -> QIcon:
        return QIcon(icon_path())

    def versionInfo(self) -> str:
        return plugin_version()

    def loadAlgorithms(self) -> None:
        from .algorithm import DescribeChangesAlgorithm
        from .report_algorithm import CreateReportAlgorithm

        self.addAlgorithm(DescribeChangesAlgorithm())
        self.addAlgorithm(CreateReportAlgorithm())

    def supportedOutputVectorLayerExtensions(self) -> list[str]:
        return ["gpkg"]

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:  # QGIS API name
        return "gpkg"

    def supportsNonFileBasedOutput(self) -> bool:
        return False
