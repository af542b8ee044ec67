"""The settings dialog in a GUI-enabled QGIS (offscreen platform, or a virtual screen for pictures) against a scripted
backend whose /v1/auth/check accepts one key: "Test connection" checks the key, the stored key is shown as stored
(never by its auth id), QGIS's master-password prompt is announced before it appears, and "Copy diagnostics" names
versions, backend and last error but never the key. Prints one JSON line.
Usage: python settings_check.py [SCREENSHOT.png]"""

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
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "qgis_plugin"))
sys.path.append(os.path.join(app.pkgDataPath(), "python", "plugins"))
from ccexpert_changes import settings  # noqa: E402
from ccexpert_changes import settings_dialog as module  # noqa: E402
from qgis.PyQt.QtWidgets import QApplication, QLabel, QLineEdit  # noqa: E402

KEY = "right-key-7f3a9c"
INFO = {"api_version": "1", "model_name": "stub-model", "model_version": "0", "chip_size": 384, "demo": False}
screenshot = sys.argv[1] if len(sys.argv) > 1 else ""


class Backend(BaseHTTPRequestHandler):
    def do_GET(self):  # http.server API name
        if self.path == "/v1/info":
            code, body = 200, INFO
        elif self.path == "/v1/auth/check" and self.server.has_check:
            if self.headers.get("Authorization") == f"Bearer {KEY}":
                code, body = 200, {"status": "ok", "label": "analyst"}
            else:
                code, body = 401, {"error": {"code": "unauthorized", "message": "invalid API key", "id": None}}
        else:
            code, body = 404, {"error": {"code": "not_found", "message": self.path, "id": None}}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve(has_check: bool) -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    server.has_check = has_check
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


url, old_url = serve(True), serve(False)
report: dict = {}
order: list[str] = []
real_store = settings.store_api_key
settings.store_api_key = lambda key, cfg="": (order.append("store"), real_store(key, cfg))[1]
module.SettingsDialog.announce_master_password = lambda self: order.append("announce")

# a fresh profile: the first stored key makes QGIS ask for its master password; the dialog says so first
real_needs = settings.needs_master_password
settings.needs_master_password = lambda: True
assert QgsApplication.authManager().setMasterPassword("settings-check-master", True)
dlg = module.SettingsDialog()
dlg.url_edit.setText(url)
dlg.key_edit.setText("wrong-key-000")
report["wrong_ok"] = dlg.test_connection()
report["wrong_text"] = dlg.result_view.toPlainText()
report["order"] = list(order)
settings.needs_master_password = real_needs
dlg.key_edit.setText(KEY)
report["right_ok"] = dlg.test_connection()
report["right_text"] = dlg.result_view.toPlainText()
report["authcfg"] = settings.authcfg()
report["labels"] = [w.text() for w in dlg.findChildren(QLabel)] + [w.text() for w in dlg.findChildren(QLineEdit)]
dlg.url_edit.setText(old_url)
report["old_ok"] = dlg.test_connection()
report["old_text"] = dlg.result_view.toPlainText()
dlg.url_edit.setText(url)
dlg.last_info = None
report["diagnostics"] = dlg.copy_diagnostics()
report["clipboard"] = QApplication.clipboard().text()
report["settings_file_has_key"] = KEY in Path(settings.QgsSettings().fileName()).read_text(errors="replace")
if screenshot:
    dlg.test_connection()
    dlg.show()
    for _ in range(20):
        app.processEvents()
    dlg.grab().save(screenshot)
print(json.dumps(report))
