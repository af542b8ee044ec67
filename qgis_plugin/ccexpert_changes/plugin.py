"""QGIS GUI glue: the Processing provider, a toolbar/menu action "Describe changes" that opens the algorithm (two
different rasters preselected, the older as Before), the settings dialog and the "Show before/after" layer action.
No network and no heavy import here (the algorithm loads on first use)."""

from __future__ import annotations

from qgis.core import QgsApplication
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .about import icon_path, tr

ALGORITHM_ID = "ccexpert:describe_changes"
REPORT_ID = "ccexpert:create_report"


class CCExpertPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.actions: list[QAction] = []
        self.tile_action = None  # "Show before/after" on change-captions tiles (tile_view)
        self.menu = tr("&CCExpert")

    def initProcessing(self) -> None:  # noqa: N802 - QGIS API name; also what qgis_process calls
        if self.provider is None:
            from .provider import CCExpertProvider

            self.provider = CCExpertProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS API name
        self.initProcessing()
        if self.iface is None:
            return
        describe = QAction(QIcon(icon_path()), tr("Describe changes"), self.iface.mainWindow())
        describe.setToolTip(tr("Caption what changed between a before and an after raster (CCExpert backend)"))
        describe.triggered.connect(self.open_algorithm)
        report = QAction(tr("Create report…"), self.iface.mainWindow())
        report.setToolTip(tr("HTML report of a change-captions layer: dates, overview, before/after of each change"))
        report.triggered.connect(self.open_report)
        settings_action = QAction(tr("Settings…"), self.iface.mainWindow())
        settings_action.triggered.connect(self.open_settings)
        self.iface.addToolBarIcon(describe)
        for action in (describe, report, settings_action):
            self.iface.addPluginToRasterMenu(self.menu, action)
        self.actions = [describe, report, settings_action]
        from qgis.gui import QgsGui

        from .tile_view import ShowBeforeAfterAction

        self.tile_action = ShowBeforeAfterAction(self.iface.mainWindow())
        QgsGui.mapLayerActionRegistry().addMapLayerAction(self.tile_action)

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginRasterMenu(self.menu, action)
            self.iface.removeToolBarIcon(action)
        self.actions = []
        if self.tile_action is not None:
            from qgis.gui import QgsGui

            QgsGui.mapLayerActionRegistry().removeMapLayerAction(self.tile_action)
            self.tile_action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        from .backend_client import remove_user_agent_hook

        remove_user_agent_hook()

    def open_algorithm(self) -> None:
        """The algorithm dialog with two different rasters of the project preselected, the older as Before."""
        import processing

        from .dialog import preselect_rasters

        processing.execAlgorithmDialog(ALGORITHM_ID, preselect_rasters())

    def open_report(self) -> None:
        """The "Create report" algorithm, with the active layer as input when it is a change-captions layer."""
        import processing

        from .tile_view import gpkg_path

        layer = self.iface.activeLayer()
        processing.execAlgorithmDialog(REPORT_ID, {"INPUT": layer} if gpkg_path(layer) else {})

    def open_settings(self) -> None:
        from .settings_dialog import SettingsDialog

        SettingsDialog(self.iface.mainWindow()).exec()
