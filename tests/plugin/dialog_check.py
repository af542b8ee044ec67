"""The Describe changes dialog in a GUI-enabled QGIS (offscreen platform, or a virtual screen for pictures), against
a scripted /v1/info that names the model's pixel size: file and date under Before/After (two layers with the same
name), Before = After refused without asking the backend, the matching chip size offered for 2 m pixels, and a new
default OUTPUT for a second run. Processing's own run step is replaced by a recorder: nothing is captioned.
Prints one JSON line. Usage: python dialog_check.py WORKDIR [SCREENSHOT.png]"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from qgis.core import QgsApplication

app = QgsApplication([], True)
app.initQgis()
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "qgis_plugin"))
sys.path.insert(0, str(HERE))
sys.path.append(os.path.join(app.pkgDataPath(), "python", "plugins"))
from ccexpert_changes import dialog as dialog_module  # noqa: E402
from ccexpert_changes.provider import CCExpertProvider  # noqa: E402
from osgeo import gdal  # noqa: E402
from plugin_rasters import ORIGIN, textured, write_tif  # noqa: E402
from processing.core.Processing import Processing  # noqa: E402
from processing.gui.AlgorithmDialog import AlgorithmDialog  # noqa: E402
from qgis.core import QgsProject, QgsRasterLayer  # noqa: E402
from qgis.PyQt.QtWidgets import QTextEdit  # noqa: E402

work = Path(sys.argv[1])
screenshot = sys.argv[2] if len(sys.argv) > 2 else ""
INFO = {"api_version": "1", "model_name": "stub", "model_version": "0", "chip_size": 384, "gsd_m": 0.5, "demo": True}
HITS: list[str] = []


class Info(BaseHTTPRequestHandler):
    def do_GET(self):  # http.server API name
        HITS.append(self.path)
        body = json.dumps(INFO).encode()
        self.send_response(200 if self.path.endswith("/v1/info") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Info)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}"

Processing.initialize()
PROVIDER = CCExpertProvider()
QgsApplication.processingRegistry().addProvider(PROVIDER)
report: dict = {}

# two 2 m rasters, both chip_2.tif, in two folders; the earlier one dated in its metadata
paths = []
for year in ("2019", "2021"):
    (work / year).mkdir(parents=True, exist_ok=True)
    path = write_tif(
        work / year / "chip_2.tif", textured(800, 800, seed=int(year)), (ORIGIN[0], 2, 0, ORIGIN[1], 0, -2)
    )
    paths.append(str(path))
ds = gdal.Open(paths[0], gdal.GA_Update)
ds.SetMetadataItem("TIFFTAG_DATETIME", "2019:05:01 10:00:00")
ds = None
project = QgsProject.instance()
layers = [QgsRasterLayer(p, "chip_2", "gdal") for p in paths]
project.addMapLayers(layers)

recorded: list[dict] = []
AlgorithmDialog.runAlgorithm = lambda self: recorded.append(self.createProcessingParameters())  # no real run
choices: list[str] = []
asked: list[str] = []


def fake_ask(parent, text, chip, matching):
    asked.append(f"{chip}->{matching}: {text}")
    return choices.pop(0)


dialog_module.ask_pixel_size = fake_ask
alg = QgsApplication.processingRegistry().createAlgorithmById("ccexpert:describe_changes")
dlg = alg.createCustomParametersWidget(None)
dlg.setParameters({"BEFORE": layers[0].id(), "AFTER": layers[1].id(), "BACKEND_URL": url})
report["labels"] = {name: label.text() for name, label in dlg.source_labels.items()}

dlg.show()  # QGIS restores its last (for a new profile: small) size on show; the dialog widens itself
for _ in range(20):
    app.processEvents()
screen = dlg.screen().availableGeometry()
report["size"] = [dlg.width(), dlg.height()]
report["screen"] = [screen.width(), screen.height()]
report["log_found"] = dlg.findChild(QTextEdit, "txtLog") is not None and isinstance(dialog_module._log_lines(dlg), list)
if screenshot:
    dlg.grab().save(screenshot)

# Before = After: refused by checkParameterValues, /v1/info never asked
dlg.setParameters({"BEFORE": layers[0].id(), "AFTER": layers[0].id(), "BACKEND_URL": url})
dlg.runAlgorithm()
report["same_hits"] = list(HITS)
report["same_recorded"] = len(recorded)  # the base class (here: the recorder) shows why and runs nothing
recorded.clear()

dlg.setParameters({"BEFORE": layers[0].id(), "AFTER": layers[1].id(), "BACKEND_URL": url, "CHIP_SIZE": 0})
choices[:] = ["cancel", "match", "keep"]
dlg.runAlgorithm()
report["after_cancel"] = len(recorded)
dlg.runAlgorithm()
report["match_chip_size"] = recorded[-1]["CHIP_SIZE"] if recorded else None
dlg.setParameters({"BEFORE": layers[0].id(), "AFTER": layers[1].id(), "BACKEND_URL": url, "CHIP_SIZE": 0})
default_output = dlg._default_output
Path(default_output).parent.mkdir(parents=True, exist_ok=True)
Path(default_output).write_bytes(b"the first run's result")
dlg.runAlgorithm()
last = recorded[-1] if recorded else {}
out = last.get("OUTPUT")
report["keep_chip_size"] = last.get("CHIP_SIZE")
report["notes"] = dlg.notes
report["asked"] = asked
report["first_output"] = default_output
report["second_output"] = out.sink.staticValue() if hasattr(out, "sink") else out
report["first_kept"] = Path(default_output).read_bytes() == b"the first run's result"
server.shutdown()
print(json.dumps(report))
