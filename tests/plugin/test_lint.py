"""The checks plugins.qgis.org and our CI run on the plugin folder: flake8 (120), bandit, detect-secrets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PLUGIN = REPO / "qgis_plugin" / "ccexpert_changes"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed in the test venv")
    return found


def test_flake8_clean_at_120():
    done = subprocess.run(
        # E203 (whitespace before ':' in slices) is how ruff format / black write `a[i + 1 : j]`: their documented
        # flake8 setting ignores it
        [_tool("flake8"), "--max-line-length", "120", "--extend-ignore", "E203", str(PLUGIN)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_bandit_finds_nothing():
    done = subprocess.run(
        [_tool("bandit"), "-q", "-r", str(PLUGIN), "-f", "json"], capture_output=True, text=True, timeout=120
    )
    report = json.loads(done.stdout)
    assert report["results"] == [], json.dumps(report["results"], indent=1)


def test_detect_secrets_finds_nothing():
    done = subprocess.run(
        [_tool("detect-secrets"), "scan", "--all-files", str(PLUGIN)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"] == {}
