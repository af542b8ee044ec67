"""GUI checks run in a subprocess with a GUI-enabled QgsApplication on the offscreen platform (the pytest
session itself is headless): settings dialog with "Test connection", and the algorithm dialog's chip-count
confirmation. Prints one JSON line. Usage: python gui_check.py BACKEND_URL API_KEY BEFORE AFTER OUTPUT"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from qgis.core import QgsApplication, QgsSettings

app = QgsApplication([], True)
app.initQgis()
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "qgis_plugin"))
sys.path.append(os.path.join(app.pkgDataPath(), "python", "plugins"))
from ccexpert_changes import dialog as dialog_module  # noqa: E402
from ccexpert_changes import settings  # noqa: E402
from ccexpert_changes.provider import CCExpertProvider  # noqa: E402
from ccexpert_changes.settings_dialog import SettingsDialog  # noqa: E402
from processing.core.Processing import Processing  # noqa: E402
from qgis.PyQt.QtWidgets import QMessageBox  # noqa: E402

url, key, before, after, output = sys.argv[1:6]
assert QgsApplication.authManager().setMasterPassword("gui-check-master", True)
Processing.initialize()
PROVIDER = CCExpertProvider()  # keep the Python side of the provider alive
QgsApplication.processingRegistry().addProvider(PROVIDER)
report: dict = {}

# settings dialog: a wrong key is still a working connection test (/v1/info is open), then the right key
dlg = SettingsDialog()
dlg.url_edit.setText(url)
dlg.key_edit.setText(key)
dlg.max_chips_spin.setValue(1234)
report["test_ok"] = dlg.test_connection()
report["test_text"] = dlg.result_view.toPlainText()
dlg.save()
report["saved_url"] = QgsSettings().value("ccexpert_changes/backend_url")
report["saved_authcfg"] = settings.authcfg()
report["key_in_settings_file"] = key in Path(QgsSettings().fileName()).read_text(errors="replace")
defaults = QgsApplication.processingRegistry().algorithmById("ccexpert:describe_changes")
report["default_url"] = defaults.parameterDefinition("BACKEND_URL").defaultValue()
report["default_authcfg"] = defaults.parameterDefinition("AUTHCFG").defaultValue()
report["default_max_chips"] = defaults.parameterDefinition("MAX_CHIPS").defaultValue()
dlg2 = SettingsDialog()
dlg2.url_edit.setText("http://127.0.0.1:9")
report["down_ok"] = dlg2.test_connection()
report["down_text"] = dlg2.result_view.toPlainText()

# toolbar: two different rasters preselected, the older ("before (2019)", added first) as Before
from qgis.core import QgsProject, QgsRasterLayer  # noqa: E402

project = QgsProject.instance()
for path, name in ((before, "before (2019)"), (after, "after")):
    project.addMapLayer(QgsRasterLayer(path, name, "gdal"))
alg0 = QgsApplication.processingRegistry().createAlgorithmById("ccexpert:describe_changes")
dlg0 = alg0.createCustomParametersWidget(None)
dlg0.setParameters(dialog_module.preselect_rasters(project))
chosen = dlg0.createProcessingParameters()
names = {layer.id(): layer.name() for layer in project.mapLayers().values()}
names.update({layer.source(): layer.name() for layer in project.mapLayers().values()})
report["preselected"] = [names.get(str(chosen.get("BEFORE"))), names.get(str(chosen.get("AFTER")))]
project.removeAllMapLayers()

# algorithm dialog: 9 chips over MAX_CHIPS 4 -> asks; "No" runs nothing, "Yes" runs with MAX_CHIPS raised
alg = QgsApplication.processingRegistry().createAlgorithmById("ccexpert:describe_changes")
answers, asked = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes], []


def fake_question(parent, title, text, *args, **kwargs):
    asked.append(text)
    return answers[len(asked) - 1]


dialog_module.QMessageBox.question = fake_question
params = {
    "BEFORE": before,
    "AFTER": after,
    "BACKEND_URL": url,
    "AUTHCFG": settings.authcfg(),
    "MAX_CHIPS": 4,
    "OUTPUT": output,
}
dlg3 = alg.createCustomParametersWidget(None)
dlg3.setParameters(params)
finished = []
original_finish = dlg3.finish
dlg3.finish = lambda ok, results, *a, **k: (finished.append((ok, dict(results))), original_finish(ok, results, *a, **k))
dlg3.runAlgorithm()
report["ran_after_no"] = Path(output).exists() or bool(finished)
dlg3.runAlgorithm()
deadline = time.monotonic() + 240
while not finished and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.05)
report["asked"] = asked
report["finished"] = [(ok, {k: v for k, v in r.items() if k in ("TILES", "CAPTIONED", "ERRORS")}) for ok, r in finished]
print(json.dumps(report))
app.exitQgis()  # the documented end of a standalone QGIS script: without it QGIS 3.40/3.44 may crash at exit
