"""The Describe changes dialog driven in a GUI-enabled QGIS subprocess (dialog_check.py; the pytest session is
headless): issue 25.5, 25.9, 25.13, 25.2."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


def test_dialog_shows_sources_checks_first_and_offers_the_matching_chip_size(tmp_path):
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"), QT_QPA_PLATFORM="offscreen")
    env.pop("QGIS_OPTIONS_PATH", None)
    env["HOME"] = str(tmp_path / "home")  # the default OUTPUT folder lands in the test's own Documents
    done = subprocess.run(
        ["/usr/bin/python3", str(Path(__file__).with_name("dialog_check.py")), str(tmp_path / "work")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    before, after = report["labels"]["BEFORE"], report["labels"]["AFTER"]
    assert str(tmp_path / "work" / "2019" / "chip_2.tif") in before and "acquired 2019-05-01" in before
    assert str(tmp_path / "work" / "2021" / "chip_2.tif") in after and "file modified 20" in after
    assert report["same_hits"] == []  # Before = After: refused before /v1/info was asked
    assert report["same_recorded"] == 1  # handed to Processing's check, which shows the reason
    assert report["after_cancel"] == 0  # "Cancel" in the pixel-size question runs nothing
    assert report["match_chip_size"] == 96  # 2 m pixels on a 0.5 m model: 96 px chips
    assert report["asked"][0].startswith("384->96: The model was trained on about 0.5 m per pixel")
    assert report["keep_chip_size"] in (0, None) and report["notes"] == [report["asked"][0].split(": ", 1)[1]]
    assert report["first_kept"] and report["second_output"] != report["first_output"]
    # the names carry the minute: within one minute the second run is numbered, across a minute it is new by itself
    first, second = Path(report["first_output"]).stem, Path(report["second_output"]).stem
    assert second == f"{first}_2" or not second.startswith(first)
    width, height = report["size"]
    assert width >= min(1000, report["screen"][0]) and height >= min(740, report["screen"][1] - 40)
    assert report["log_found"]  # the Log tab a failed run's last lines are read from (Copy diagnostics)
