"""Plugin tests: real QGIS 3.22 headless (pytest-qgis) against a real ``ccexpert serve`` on 127.0.0.1.

The service runs from the backend venv (``.venv``, torch) in a subprocess; the model is the shipped demo
model when ``backend/ccexpert/demo_model`` holds one, else the tiny random-weight preset built by the backend.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BACKEND_BIN = REPO / ".venv" / "bin"
SHARED_DATA = REPO.parent / "shared" / "data"
MASTER_PASSWORD = "ccexpert-plugin-tests"  # nosec B105 - throwaway auth DB under tests/plugin/.qgis-settings
sys.path.insert(0, str(REPO / "qgis_plugin"))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_PROVIDERS: list = []  # the registry owns them; keep the Python side alive too


@pytest.fixture(scope="session", autouse=True)
def layer_tree_view(qgis_iface, qgis_parent):
    """A real layer tree view behind the test interface's ``layerTreeView()``.

    pytest-qgis' stub interface answers every method it lacks with a MagicMock. QGIS 3.44's Processing hands
    ``iface.layerTreeView()`` to ``QgsProcessingGuiUtils.addResultLayers`` when it loads results, and a C++ call
    cannot take a mock; the desktop always has a real view over the project's layer tree, so the tests get one too.
    """
    from qgis.core import QgsLayerTreeModel, QgsProject
    from qgis.gui import QgsLayerTreeView
    from qgis.PyQt import sip

    view = QgsLayerTreeView(qgis_parent)
    model = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot(), view)
    view.setModel(model)
    qgis_iface.layerTreeView = lambda: view
    yield view
    del qgis_iface.layerTreeView
    sip.delete(view)  # with its model, before pytest-qgis' exitQgis() tears the project down


@pytest.fixture
def provider(qgis_app, qgis_processing):
    """The ccexpert provider, registered again when a test unloaded the plugin (test_plugin.py does)."""
    from ccexpert_changes.provider import CCExpertProvider
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    if registry.providerById("ccexpert") is None:
        p = CCExpertProvider()
        _PROVIDERS.append(p)
        assert registry.addProvider(p)
    return registry.providerById("ccexpert")


@pytest.fixture(scope="session")
def master_password(qgis_app):
    from qgis.core import QgsApplication

    manager = QgsApplication.authManager()
    if not manager.setMasterPassword(MASTER_PASSWORD, True):
        pytest.fail("cannot set the QGIS master password; delete tests/plugin/.qgis-settings and rerun")
    return MASTER_PASSWORD


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    demo = REPO / "backend" / "ccexpert" / "demo_model"
    if (demo / "config.json").exists() and (demo / "model.safetensors").exists():
        return demo
    python = BACKEND_BIN / "python"
    if not python.exists():
        pytest.skip("backend venv .venv is missing: run scripts/setup.sh")
    target = tmp_path_factory.mktemp("tiny_model") / "model"
    code = (
        "import sys; from pathlib import Path; from ccexpert.presets import save_tiny_model; "
        "print(save_tiny_model(Path(sys.argv[1]), seed=0))"
    )
    done = subprocess.run([str(python), "-c", code, str(target)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.skip(f"cannot build the tiny model with the backend venv: {done.stderr[-400:]}")
    return target


@dataclass
class Backend:
    url: str
    key: str
    info: dict
    demo: bool


def _get_info(url: str) -> dict:
    import json

    with urllib.request.urlopen(url + "/v1/info", timeout=5) as r:  # nosec B310 - loopback test server
        return json.loads(r.read())


@pytest.fixture(scope="session")
def backend(tmp_path_factory, request):
    """A real ``ccexpert serve`` with one API key. ``CCEXPERT_TEST_BACKEND="URL KEY"`` reuses a running one."""
    reuse = os.environ.get("CCEXPERT_TEST_BACKEND", "").split()
    if len(reuse) == 2:
        info = _get_info(reuse[0])
        yield Backend(reuse[0], reuse[1], info, False)
        return
    model_dir = request.getfixturevalue("model_dir")
    if not (BACKEND_BIN / "ccexpert").exists():
        pytest.skip("backend venv .venv is missing: run scripts/setup.sh")
    probe = subprocess.run(
        [str(BACKEND_BIN / "ccexpert"), "serve", "--help"], capture_output=True, text=True, timeout=120
    )
    if probe.returncode != 0:
        pytest.skip(f"`ccexpert serve` is not available: {probe.stderr.strip()[-300:]}")
    work = tmp_path_factory.mktemp("serve")
    key = secrets.token_urlsafe(24)
    (work / "keys.txt").write_text(f"{key} plugin-tests\n", encoding="utf-8")
    port = free_port()
    log = open(work / "serve.log", "w")  # noqa: SIM115 - closed at teardown
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("QGIS_CUSTOM_CONFIG_PATH", None)
    proc = subprocess.Popen(
        [
            str(BACKEND_BIN / "ccexpert"),
            "serve",
            "--model",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-keys-file",
            str(work / "keys.txt"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(work),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    info = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"ccexpert serve exited with {proc.returncode}:\n{(work / 'serve.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:  # nosec B310 - loopback test server
                if r.status == 200:
                    info = _get_info(url)
                    break
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.5)
    if info is None:
        proc.kill()
        pytest.fail(f"ccexpert serve did not become ready:\n{(work / 'serve.log').read_text()[-3000:]}")
    yield Backend(url, key, info, bool(info.get("demo")) and model_dir.name == "demo_model")
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def authcfg(backend, master_password) -> str:
    from ccexpert_changes import settings

    return settings.store_api_key(backend.key)


class RecordingFeedback:
    """Factory for a QgsProcessingFeedback that records messages (and can cancel at a progress value)."""

    @staticmethod
    def make(cancel_at: float | None = None):
        from qgis.core import QgsProcessingFeedback

        class _Feedback(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.infos: list[str] = []
                self.errors: list[str] = []
                self.progressChanged.connect(self._progress)

            def pushInfo(self, info):
                self.infos.append(info)
                super().pushInfo(info)

            def reportError(self, error, fatalError=False):
                self.errors.append(error)
                super().reportError(error, fatalError)

            def _progress(self, value):
                if cancel_at is not None and value >= cancel_at and 0 < value < 100:
                    self.cancel()

            @property
            def log(self) -> str:
                return "\n".join(self.infos + self.errors)

        return _Feedback()


@pytest.fixture
def run_describe(provider, backend, authcfg):
    """``run_describe(params, feedback=None)`` -> (results, feedback): processing.run with the test backend."""
    import processing

    def run(params: dict, feedback=None, **overrides):
        feedback = feedback or RecordingFeedback.make()
        full = {"BACKEND_URL": backend.url, "AUTHCFG": authcfg, **params, **overrides}
        return processing.run("ccexpert:describe_changes", full, feedback=feedback), feedback

    run.defaults = {"BACKEND_URL": backend.url, "AUTHCFG": authcfg}
    return run


def read_layer(path) -> list[dict]:
    """Every feature of the output as a dict (attributes + 'bbox' tuple)."""
    from ccexpert_changes.core.grid import parse_tile_id
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer(f"{path}|layername=change_captions", "out", "ogr")
    assert layer.isValid(), f"output {path} is not a valid layer"
    rows = []
    for f in layer.getFeatures():
        row = {
            name: (None if f[name] is None or (hasattr(f[name], "isNull") and f[name].isNull()) else f[name])
            for name in layer.fields().names()
            if name != "fid"
        }
        bb = f.geometry().boundingBox()
        row["bbox"] = (bb.xMinimum(), bb.yMinimum(), bb.xMaximum(), bb.yMaximum())
        row["vertices"] = len(list(f.geometry().vertices()))
        # row/col here are the grid indexes (0-based, as in the tile id), checked against the layer's 1-based
        # row/col fields (issue 25.8) on every tile
        grid_row, grid_col, _ = parse_tile_id(row["tile_id"])
        assert (row["row"], row["col"]) == (grid_row + 1, grid_col + 1), row
        row["row"], row["col"] = grid_row, grid_col
        rows.append(row)
    return rows
