"""The packaged zip: checked the way plugins.qgis.org checks uploads, installed into a fresh profile, and its
algorithm run through ``qgis_process``."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import BACKEND_BIN, REPO
from plugin_rasters import pair

REQUIRED = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about", "tracker", "repository")


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    if not (BACKEND_BIN / "ccexpert").exists():
        pytest.skip("backend venv .venv is missing: run scripts/setup.sh")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [str(BACKEND_BIN / "ccexpert"), "package-plugin", "-o", str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.parent == out and path.exists()
    return path


def _metadata(zf: zipfile.ZipFile) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(zf.read("ccexpert_changes/metadata.txt").decode("utf-8"))
    return dict(parser["general"])


def test_zip_passes_the_repository_checks(plugin_zip):
    assert plugin_zip.stat().st_size < 25 * 1024 * 1024
    with zipfile.ZipFile(plugin_zip) as zf:
        names = zf.namelist()
        assert {n.split("/")[0] for n in names} == {"ccexpert_changes"}
        for needed in (
            "__init__.py",
            "metadata.txt",
            "LICENSE",
            "icon.svg",
            "styles/change_captions.qml",
            "i18n/ccexpert_changes_en.qm",
            "i18n/ccexpert_changes_en.ts",
            "core/grid.py",
            "algorithm.py",
        ):
            assert f"ccexpert_changes/{needed}" in names
        bad = [
            n
            for n in names
            if n.endswith((".pyc", ".pyo", ".so", ".dll", ".safetensors", ".bin"))
            or any(part.startswith(".") or part == "__pycache__" for part in n.split("/"))
        ]
        assert not bad, bad
        meta = _metadata(zf)
        assert "GNU GENERAL PUBLIC LICENSE" in zf.read("ccexpert_changes/LICENSE").decode()
        assert "Version 2" in zf.read("ccexpert_changes/LICENSE").decode()
    for key in REQUIRED:
        assert meta.get(key, "").strip(), f"metadata.txt lacks {key}"
    assert meta["category"] == "Raster" and meta["hasProcessingProvider"] == "yes"
    assert meta["qgisMinimumVersion"] == "3.22" and meta["qgisMaximumVersion"] == "4.99"
    assert meta["tracker"].startswith("https://") and meta["repository"].startswith("https://")
    assert "ccexpert serve" in meta["about"] and "backend" in meta["about"].lower()
    assert meta["changelog"].strip() and meta["icon"] == "icon.svg"
    assert not any("<" in v and ">" in v for v in meta.values()), "no HTML in metadata.txt"


def test_metadata_and_license_exist_once():
    """One source of truth each: the top-level metadata.txt is the plugin's (the plugin folder holds a link to it,
    which QGIS reads at dev time; the wheel ships its contents as package data of ccexpert_changes and ``ccexpert
    package-plugin`` zips them); the LICENSE lives in the plugin folder only."""
    plugin = REPO / "qgis_plugin" / "ccexpert_changes"
    assert (REPO / "metadata.txt").is_file() and not (REPO / "metadata.txt").is_symlink()
    assert (plugin / "metadata.txt").is_symlink() and (plugin / "metadata.txt").resolve() == REPO / "metadata.txt"
    assert (plugin / "LICENSE").is_file() and not (plugin / "LICENSE").is_symlink()
    assert not (REPO / "LICENSE").exists()


def _qgis_process() -> str:
    # Debian's /usr/bin/qgis_process wrapper passes --noversioncheck (from /etc/default/qgis), which
    # qgis_process 3.22 rejects; the real binary sits next to it
    for candidate in ("/usr/bin/qgis_process.bin", shutil.which("qgis_process") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("qgis_process is not installed (apt-get install qgis)")


def _fresh_profile(plugin_zip, tmp_path) -> tuple[str, dict, Path]:
    """(qgis_process, environment, plugins folder) of a fresh QGIS profile with the zip installed and enabled."""
    exe = _qgis_process()
    config = tmp_path / "qgis-config"
    plugins = config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(plugins)
    (tmp_path / "master").write_text("fresh-profile-master\n")
    env = dict(
        os.environ,
        QGIS_CUSTOM_CONFIG_PATH=str(config),
        QT_QPA_PLATFORM="offscreen",
        QGIS_AUTH_PASSWORD_FILE=str(tmp_path / "master"),
    )
    env.pop("QGIS_OPTIONS_PATH", None)
    enable = subprocess.run(
        [exe, "plugins", "enable", "ccexpert_changes"], capture_output=True, text=True, env=env, timeout=180
    )
    assert enable.returncode == 0, enable.stdout + enable.stderr
    return exe, env, plugins


def test_qgis_process_exits_non_zero_when_no_tile_is_captioned(plugin_zip, tmp_path):
    from stub_backend import FAILURE, failing_backend

    exe, env, _ = _fresh_profile(plugin_zip, tmp_path)
    before, after = pair(tmp_path, h=384, w=384, changes=((50, 50, 200, 200),))
    out = tmp_path / "failed.gpkg"
    with failing_backend() as (url, _hits):
        run = subprocess.run(
            [
                exe,
                "run",
                "ccexpert:describe_changes",
                "--",
                f"BEFORE={before}",
                f"AFTER={after}",
                f"BACKEND_URL={url}",
                f"OUTPUT={out}",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    assert run.returncode != 0, run.stdout[-3000:]
    assert "No tile was captioned" in run.stdout + run.stderr and FAILURE in run.stdout + run.stderr


def test_installed_zip_runs_through_qgis_process(plugin_zip, backend, tmp_path):
    exe, env, plugins = _fresh_profile(plugin_zip, tmp_path)
    listed = subprocess.run([exe, "list"], capture_output=True, text=True, env=env, timeout=180)
    assert "ccexpert:describe_changes" in listed.stdout, listed.stdout[-2000:] + listed.stderr[-2000:]

    # store the API key in the fresh profile's auth database, as an admin would on a headless server; QGIS 3.22
    # reads QGIS_AUTH_PASSWORD_FILE only once the database has a master password, so the first one is set here
    script = (
        "import sys; from qgis.core import QgsApplication; app = QgsApplication([], False); app.initQgis(); "
        "import os; pw = open(os.environ['QGIS_AUTH_PASSWORD_FILE']).read().strip(); "
        "assert QgsApplication.authManager().setMasterPassword(pw, True); "
        f"sys.path.insert(0, {str(plugins)!r}); from ccexpert_changes import settings; "
        "print(settings.store_api_key(sys.argv[1]))"
    )
    stored = subprocess.run(
        ["/usr/bin/python3", "-c", script, backend.key], capture_output=True, text=True, env=env, timeout=120
    )
    assert stored.returncode == 0, stored.stderr[-2000:]
    authcfg = stored.stdout.strip().splitlines()[-1]
    assert len(authcfg) == 7

    before, after = pair(tmp_path, h=700, w=700, changes=((50, 50, 200, 200),))
    out = tmp_path / "qp.gpkg"
    run = subprocess.run(
        [
            exe,
            "--json",
            "run",
            "ccexpert:describe_changes",
            "--",
            f"BEFORE={before}",
            f"AFTER={after}",
            f"BACKEND_URL={backend.url}",
            f"AUTHCFG={authcfg}",
            "MAX_NODATA=0.9",
            f"OUTPUT={out}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(run.stdout[run.stdout.index("{") :])["results"]
    assert results["TILES"] == 4 and results["CAPTIONED"] == 4 and results["ERRORS"] == 0
    assert Path(results["OUTPUT"]) == out and out.exists()
