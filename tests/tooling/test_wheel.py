"""The wheel works installed, without the checkout: the default (demo) model and the QGIS plugin's files are package
data, so ``ccexpert caption`` and ``ccexpert package-plugin`` run from any folder.

The wheel is built (``pip wheel --no-build-isolation``, the locked setuptools) from a copy of the sources made as a
clone has them (the plugin's links to ``resources/`` and the top-level ``metadata.txt`` kept as links), so no stale
``build/`` folder can slip files into it and the checkout is left as it is; the wheel must carry the files' contents,
never a link. It is installed into a fresh venv that
sees ``.venv``'s site-packages through a ``.pth`` line (torch and the rest are not downloaded again; that folder's own
``.pth`` files, among them the editable install of ``ccexpert``, are not run), and the commands run from a folder
outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "metadata.txt", "resources", "backend", "training", "qgis_plugin")

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CCEXPERT_MODEL", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", PIP_NO_INPUT="1")
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh venv with the built wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore, symlinks=True)
        else:
            shutil.copy2(path, src / name)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        cwd=tmp,
    )
    wheels = sorted((tmp / "dist").glob("ccexpert-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as zf:
        names = set(zf.namelist())
        links = [i.filename for i in zf.infolist() if stat.S_ISLNK(i.external_attr >> 16)]
        assert not links, f"the wheel carries links: {links}"
        for inside, source in (
            ("ccexpert_changes/metadata.txt", "metadata.txt"),
            ("ccexpert_changes/icon.svg", "resources/icons/icon.svg"),
            ("ccexpert_changes/styles/change_captions.qml", "resources/styles/change_captions.qml"),
            ("ccexpert_changes/styles/change_areas.qml", "resources/styles/change_areas.qml"),
        ):
            assert zf.read(inside) == (REPO / source).read_bytes(), f"{inside} is not {source}"
    for needed in (
        "ccexpert/demo_model/config.json",
        "ccexpert/demo_model/model.safetensors",
        "ccexpert_changes/metadata.txt",
        "ccexpert_changes/LICENSE",
        "ccexpert_changes/icon.svg",
        "ccexpert_changes/styles/change_captions.qml",
        "ccexpert_training/configs/stage1.yaml",
    ):
        assert needed in names, f"{needed} is not in the wheel"

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp)
    (Path(purelib.stdout.strip()) / "ccexpert_dev_venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--force-reinstall",
            "--no-index",
            str(wheels[0]),
        ],
        cwd=tmp,
    )
    return venv / "bin"


@pytest.fixture
def outside(tmp_path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    assert REPO not in folder.resolve().parents
    return folder


def test_installed_package_uses_its_own_files(installed, outside):
    code = (
        "import json, ccexpert, ccexpert.paths as p, ccexpert.commands.package_plugin as pp; "
        "print(json.dumps([ccexpert.__file__, str(p.default_model_dir()), str(pp.plugin_dir())]))"
    )
    module, model, plugin = json.loads(_run([str(installed / "python"), "-c", code], cwd=outside).stdout)
    venv = installed.parent.resolve()
    for path in (module, model, plugin):
        assert venv in Path(path).resolve().parents, f"{path} is not the installed copy"
    assert Path(model).name == "demo_model" and (Path(model) / "model.safetensors").is_file()


def test_caption_with_the_default_demo_model(installed, outside):
    rng = np.random.default_rng(0)
    before = (rng.integers(90, 110, (384, 384, 3))).astype(np.uint8)
    after = before.copy()
    after[100:260, 120:300] = (200, 60, 40)  # a new red block: something changed
    Image.fromarray(before).save(outside / "before.png")
    Image.fromarray(after).save(outside / "after.png")
    done = _run(
        [str(installed / "ccexpert"), "caption", "before.png", "after.png", "--device", "cpu", "--json"], cwd=outside
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(result["caption"], str) and result["caption"].strip()
    assert 0.0 <= result["confidence"] <= 1.0


def test_package_plugin_from_the_installed_package(installed, outside):
    done = _run([str(installed / "ccexpert"), "package-plugin", "-o", "dist"], cwd=outside)
    target = Path(done.stdout.strip().splitlines()[-1])
    assert not target.is_absolute() or outside in target.parents
    target = outside / target if not target.is_absolute() else target
    with zipfile.ZipFile(target) as zf:
        names = set(zf.namelist())
        assert "GNU GENERAL PUBLIC LICENSE" in zf.read("ccexpert_changes/LICENSE").decode()
        # the installed package zips the contents of the top-level metadata.txt and resources/
        assert zf.read("ccexpert_changes/metadata.txt") == (REPO / "metadata.txt").read_bytes()
        qml = zf.read("ccexpert_changes/styles/change_captions.qml")
        assert qml == (REPO / "resources" / "styles" / "change_captions.qml").read_bytes()
        assert zf.read("ccexpert_changes/icon.svg") == (REPO / "resources" / "icons" / "icon.svg").read_bytes()
    for needed in ("__init__.py", "metadata.txt", "LICENSE", "icon.svg", "styles/change_captions.qml"):
        assert f"ccexpert_changes/{needed}" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
