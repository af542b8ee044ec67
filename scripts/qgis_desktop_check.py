"""Runs inside the real QGIS desktop (`qgis --code scripts/qgis_desktop_check.py`, started by
`scripts/qgis_matrix.sh --desktop SUITE PNG`): what an analyst does once, through the plugin's own toolbar action.

Stores the API key (auth database) and the backend URL, adds the before and after rasters, triggers "Describe
changes" (the plugin's dialog with both rasters preselected), sets the output file, presses Run, lets Processing load
the result into the project the way the desktop does, zooms to it, waits for the map to render and saves a
screenshot of the whole screen. Writes a JSON report (QGIS version, the layer tree, the result layer's features and
renderer, messages) and quits. Settings come from the environment variable CCEXPERT_DESKTOP_CHECK (JSON: url, key,
before, after, output, screenshot, report, master)."""

from __future__ import annotations

import json
import os
import time
import traceback

from qgis.core import Qgis, QgsApplication, QgsLayerTreeGroup, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication
from qgis.utils import iface, plugins

CFG = json.loads(os.environ["CCEXPERT_DESKTOP_CHECK"])
TIMEOUT_S = 600
REPORT: dict = {"qgis": Qgis.QGIS_VERSION, "steps": []}
STARTED = time.monotonic()


def step(text: str) -> None:
    REPORT["steps"].append(f"{time.monotonic() - STARTED:6.1f}s {text}")
    write_report()


def write_report() -> None:
    with open(CFG["report"], "w", encoding="utf-8") as f:
        json.dump(REPORT, f, indent=1)


def quit_qgis(code: int) -> None:
    """Quit the way an analyst does (Project > Exit QGIS: plugins unloaded, windows closed in order)."""
    REPORT["exit"] = code
    write_report()
    QgsProject.instance().setDirty(False)  # no "save the project?" question on exit
    QTimer.singleShot(20000, exit_blocked)
    iface.actionExit().trigger()


def exit_blocked() -> None:
    """Still running 20 s after Exit: record what is on screen (a question?), then leave the event loop."""
    REPORT["exit_blocked"] = [w.windowTitle() for w in QApplication.topLevelWidgets() if w.isVisible()]
    QApplication.primaryScreen().grabWindow(0).save(CFG["screenshot"] + ".exit.png", "PNG")
    write_report()
    QgsApplication.exit(REPORT.get("exit", 1))


def fail(text: str) -> None:
    REPORT["error"] = text
    quit_qgis(1)


def tree(group: QgsLayerTreeGroup) -> list:
    out = []
    for child in group.children():
        if isinstance(child, QgsLayerTreeGroup):
            out.append({"group": child.name(), "children": tree(child)})
        else:
            out.append({"layer": child.name()})
    return out


def result_layer():
    for layer in QgsProject.instance().mapLayers().values():
        if layer.source().startswith(CFG["output"]):
            return layer
    return None


def setup() -> None:
    from ccexpert_changes import settings

    iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())  # Xvfb has no window manager
    if "ccexpert_changes" not in plugins:
        return fail("the plugin is not loaded")
    if not QgsApplication.authManager().setMasterPassword(CFG["master"], True):
        return fail("cannot set the master password")
    settings.set_authcfg(settings.store_api_key(CFG["key"]))
    settings.set_backend_url(CFG["url"])
    for path, name in ((CFG["before"], "before (2019)"), (CFG["after"], "after (2024)")):
        layer = QgsRasterLayer(path, name, "gdal")
        if not layer.isValid():
            return fail(f"cannot open {path}")
        QgsProject.instance().addMapLayer(layer)
    step("key stored, rasters added")
    describe = plugins["ccexpert_changes"].actions[0]
    REPORT["action"] = describe.text()
    QTimer.singleShot(1500, drive_dialog)  # fires inside the dialog's own event loop
    describe.trigger()  # modal: returns when drive_dialog closes the dialog
    step("dialog closed")
    QTimer.singleShot(0, wait_for_result)


def drive_dialog() -> None:
    from ccexpert_changes.dialog import DescribeChangesDialog

    dialogs = [w for w in QApplication.topLevelWidgets() if isinstance(w, DescribeChangesDialog) and w.isVisible()]
    if not dialogs:
        return fail("the Describe changes dialog did not open")
    dialog = dialogs[0]
    params = dialog.createProcessingParameters()
    REPORT["preselected"] = {k: str(params.get(k)) for k in ("BEFORE", "AFTER", "BACKEND_URL")}
    params["OUTPUT"] = CFG["output"]
    dialog.setParameters(params)
    step("Run pressed")
    dialog.runButton().click()
    poll_dialog(dialog, time.monotonic())


def poll_dialog(dialog, since: float) -> None:
    """The run happens in a task; the dialog is closed once Processing has loaded the result."""
    if result_layer() is not None:
        step("result loaded by Processing")
        dialog.close()
        return
    if time.monotonic() - since > TIMEOUT_S:
        dialog.close()
        return fail("no result layer after the run")
    QTimer.singleShot(500, lambda: poll_dialog(dialog, since))


def wait_for_result() -> None:
    layer = result_layer()
    if layer is None:
        return fail("no result layer in the project")
    node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
    REPORT["result"] = {
        "name": layer.name(),
        "group": node.parent().name() if node is not None and node.parent() is not None else None,
        "features": layer.featureCount(),
        "renderer": layer.renderer().type() if layer.renderer() else None,
        "labels": layer.labelsEnabled(),
    }
    REPORT["layer_tree"] = tree(QgsProject.instance().layerTreeRoot())
    REPORT["messages"] = [w.text() for w in iface.messageBar().items()] if hasattr(iface.messageBar(), "items") else []
    canvas = iface.mapCanvas()
    iface.setActiveLayer(layer)
    canvas.setExtent(layer.extent().buffered(layer.extent().width() * 0.05))
    canvas.mapCanvasRefreshed.connect(shoot)
    canvas.refresh()
    REPORT["scale"] = round(canvas.scale())


def shoot() -> None:
    iface.mapCanvas().mapCanvasRefreshed.disconnect(shoot)
    QApplication.processEvents()
    ok = QApplication.primaryScreen().grabWindow(0).save(CFG["screenshot"], "PNG")
    step(f"screenshot saved: {ok}")
    quit_qgis(0 if ok else 1)


def start() -> None:
    try:
        setup()
    except Exception:
        fail(traceback.format_exc())


QTimer.singleShot(TIMEOUT_S * 1000 * 2, lambda: fail("timed out"))
QTimer.singleShot(2000, start)
