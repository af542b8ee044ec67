"""Settings dialog and algorithm dialog, driven in a GUI-enabled QGIS subprocess (offscreen platform)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from plugin_rasters import pair


def test_settings_dialog_and_chip_count_confirmation(backend, tmp_path):
    before, after = pair(tmp_path, h=1152, w=1152, changes=((10, 10, 100, 100),))
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"), QT_QPA_PLATFORM="offscreen")
    env.pop("QGIS_OPTIONS_PATH", None)
    out = tmp_path / "gui.gpkg"
    done = subprocess.run(
        [
            "/usr/bin/python3",
            str(Path(__file__).with_name("gui_check.py")),
            backend.url,
            backend.key,
            str(before),
            str(after),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["test_ok"] and backend.info["model_name"] in report["test_text"]
    assert "{" not in report["test_text"] and "Chips: 384 x 384 px" in report["test_text"]  # words, not raw JSON
    assert ("Warning: the demo model" in report["test_text"]) == bool(backend.info.get("demo"))
    assert report["saved_url"] == backend.url and len(report["saved_authcfg"]) == 7
    assert not report["key_in_settings_file"]
    assert report["default_url"] == backend.url and report["default_authcfg"] == report["saved_authcfg"]
    assert report["default_max_chips"] == 1234
    assert not report["down_ok"] and "Cannot reach the CCExpert backend" in report["down_text"]
    assert len(report["asked"]) == 2 and report["asked"][0] == (
        "This run will send 9 chips to the backend (more than the limit of 4 you set in 'Ask before runs of more "
        "chips than'). Continue?"
    )
    assert report["preselected"] == ["before (2019)", "after"]  # toolbar: two different rasters, older first
    assert report["ran_after_no"] is False
    assert report["finished"] == [[True, {"TILES": 9, "CAPTIONED": 9, "ERRORS": 0}]]
    assert out.exists()
