"""QGIS GUI glue: the Processing provider, a toolbar/menu action "Describe changes" that opens the algorithm (two
different rasters preselected, the older as Before), the settings dialog, Help (Raster > CCExpert) and the "Show
before/after" layer action. No network and no heavy import here (the algorithm loads on first use)."""

from __future__ import annotations

import os

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QTranslator, QUrl
from qgis.PyQt.QtGui import QDesktopServices, QIcon
from qgis.PyQt.QtWidgets import QAction

from .about import PLUGIN_DIR, help_url, icon_path, tr

ALGORITHM_ID = "ccexpert:describe_changes"
REPORT_ID = "ccexpert:create_report"


class CCExpertPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.actions: list[QAction] = []
        self.tile_action = None  # "Show before/after" on change-captions tiles (tile_view)
        self.translator = load_translation()
        self.menu = tr("&CCExpert")

    def initProcessing(self) -> None:  # QGIS API name; also what qgis_process calls
        if self.provider is None:
            from .provider import CCExpertProvider

            self.provider = CCExpertProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # QGIS API name
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
        help_action = QAction(tr("Help"), self.iface.mainWindow())
        help_action.triggered.connect(lambda: QDesktopServices.openUrl(QUrl(help_url())))
        self.iface.addToolBarIcon(describe)
        for action in (describe, report, settings_action, help_action):
            self.iface.addPluginToRasterMenu(self.menu, action)
        self.actions = [describe, report, settings_action, help_action]
        from qgis.gui import QgsGui

        from .diagnostics import watch_log
        from .tile_view import ShowBeforeAfterAction

        self.tile_action = ShowBeforeAfterAction(self.iface.mainWindow())
        QgsGui.mapLayerActionRegistry().addMapLayerAction(self.tile_action)
        watch_log()  # the last CCExpert warning or error, for "Copy diagnostics"

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginRasterMenu(self.menu, action)
            self.iface.removeToolBarIcon(action)
        self.actions = []
        if self.tile_action is not None:
            from qgis.gui import QgsGui

            QgsGui.mapLayerActionRegistry().removeMapLayerAction(self.tile_action)
            self.tile_action = None
        from .diagnostics import unwatch_log

        unwatch_log()
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        from .backend_client import remove_user_agent_hook

        remove_user_agent_hook()
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None

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


def translation_file(locale: str) -> str | None:
    """``i18n/ccexpert_changes_<lang>.qm`` for a QGIS locale such as "de_CH" (then "de"), or None."""
    for name in (locale, locale.split("_")[0]):
        path = os.path.join(PLUGIN_DIR, "i18n", f"ccexpert_changes_{name}.qm")
        if name and os.path.isfile(path):
            return path
    return None


def load_translation(locale: str | None = None) -> QTranslator | None:
    """Install the plugin's translation for the QGIS user locale (Settings > Options > General); None when the
    plugin ships none for it."""
    if locale is None:
        locale = str(QgsSettings().value("locale/userLocale", "") or "") or "en"
    path = translation_file(locale)
    if path is None:
        return None
    translator = QTranslator()
    if not translator.load(path):
        return None
    QCoreApplication.installTranslator(translator)
    return translator
