"""Runs ccexpert:describe_changes from the source tree in its own QGIS process (fresh profile), so a test can
kill it mid-run. Usage: python run_in_subprocess.py BACKEND_URL API_KEY BEFORE AFTER OUTPUT"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from qgis.core import QgsApplication, QgsProcessingFeedback

app = QgsApplication([], False)
app.initQgis()
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "qgis_plugin"))
sys.path.append(os.path.join(app.pkgDataPath(), "python", "plugins"))
import processing  # noqa: E402
from ccexpert_changes import settings  # noqa: E402
from ccexpert_changes.provider import CCExpertProvider  # noqa: E402
from processing.core.Processing import Processing  # noqa: E402

url, key, before, after, output = sys.argv[1:6]
assert QgsApplication.authManager().setMasterPassword("subprocess-master", True)
Processing.initialize()
PROVIDER = CCExpertProvider()
QgsApplication.processingRegistry().addProvider(PROVIDER)
processing.run(
    "ccexpert:describe_changes",
    {
        "BEFORE": before,
        "AFTER": after,
        "BACKEND_URL": url,
        "AUTHCFG": settings.store_api_key(key),
        "BATCH_SIZE": 1,
        "OUTPUT": output,
    },
    feedback=QgsProcessingFeedback(),
)
print("finished")
