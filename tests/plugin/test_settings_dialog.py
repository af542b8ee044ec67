"""The settings dialog driven in a GUI-enabled QGIS subprocess (settings_check.py): issue 25.13 (the key tested
with /v1/auth/check, no raw auth id, the master-password prompt announced) and 25.14 (Copy diagnostics, no
secrets)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

KEY = "right-key-7f3a9c"


def test_connection_test_checks_the_key_and_diagnostics_never_show_it(tmp_path):
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"), QT_QPA_PLATFORM="offscreen")
    env.pop("QGIS_OPTIONS_PATH", None)
    done = subprocess.run(
        ["/usr/bin/python3", str(Path(__file__).with_name("settings_check.py"))],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["order"][:2] == ["announce", "store"]  # said before QGIS asks for the master password
    assert not report["wrong_ok"] and "API key refused" in report["wrong_text"]
    assert "stub-model" in report["wrong_text"]  # the backend answered; only the key is wrong
    assert report["right_ok"] and "API key accepted (analyst)." in report["right_text"]
    assert report["old_ok"] and "API key not checked" in report["old_text"]  # a backend without /v1/auth/check
    assert len(report["authcfg"]) == 7
    assert not any(report["authcfg"] in text for text in report["labels"])  # no raw auth id on screen
    assert "A key is stored in the QGIS authentication database." in report["labels"]
    text = report["diagnostics"]
    assert report["clipboard"] == text
    for part in ("Plugin: ", "QGIS: 3.", "Python: 3.", "GDAL: ", "Qt: ", "Backend URL: http://127.0.0.1:"):
        assert part in text, part
    assert '"model_name": "stub-model"' in text and "Last error: " in text and "API key refused" in text
    assert KEY not in text and "wrong-key-000" not in text and report["authcfg"] not in text
    assert not report["settings_file_has_key"]
