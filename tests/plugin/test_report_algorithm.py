"""``ccexpert:create_report`` (issue 25, finding 10): the report from inside QGIS, made by the backend's
``ccexpert report`` command run as a separate process; clear errors when it is missing or the layer is not one of
ours, and never over the layer's own GeoPackage."""

from __future__ import annotations

import processing
import pytest
from conftest import BACKEND_BIN
from plugin_rasters import pair
from qgis.core import QgsProcessingException, QgsVectorLayer

COMMAND = str(BACKEND_BIN / "ccexpert")


@pytest.fixture(scope="module")
def captions(tmp_path_factory):
    return {}


@pytest.fixture
def output(run_describe, tmp_path, captions):
    """A change-captions GeoPackage made by the plugin (once per module)."""
    if "out" not in captions:
        work = tmp_path.parent / "report_scene"
        work.mkdir(exist_ok=True)
        before, after = pair(work, h=768, w=768, changes=((60, 60, 300, 300),))
        out = work / "captions.gpkg"
        run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out)})
        captions["out"] = out
    return captions["out"]


def report(params):
    return processing.run("ccexpert:create_report", {"OPEN": False, **params})


def test_the_report_is_made_by_the_ccexpert_command(provider, output, tmp_path):
    html = tmp_path / "report.html"
    results = report({"INPUT": str(output), "OUTPUT": str(html), "COMMAND": COMMAND})
    assert results["OUTPUT"] == str(html)
    page = html.read_text()
    assert "<h2>All tiles</h2>" in page and page.count("<tr class=") == 4  # 2 x 2 chips
    assert '<svg class="map"' in page and "imagery unavailable" not in page


def test_a_missing_command_says_what_to_install(provider, output, tmp_path, monkeypatch):
    with pytest.raises(QgsProcessingException, match="is not an executable file"):
        report({"INPUT": str(output), "OUTPUT": str(tmp_path / "r.html"), "COMMAND": str(tmp_path / "nope")})
    monkeypatch.setenv("PATH", str(tmp_path))  # no ccexpert on PATH
    with pytest.raises(QgsProcessingException, match="needs the ccexpert command"):
        report({"INPUT": str(output), "OUTPUT": str(tmp_path / "r.html")})
    assert not (tmp_path / "r.html").exists()


def test_only_change_captions_layers_and_never_over_their_geopackage(provider, output, tmp_path):
    memory = QgsVectorLayer("Polygon?crs=EPSG:32615", "other", "memory")
    with pytest.raises(QgsProcessingException, match="is not a change-captions layer"):
        report({"INPUT": memory, "OUTPUT": str(tmp_path / "r.html"), "COMMAND": COMMAND})
    kept = output.read_bytes()
    with pytest.raises(QgsProcessingException, match="would replace the layer's own GeoPackage"):
        report({"INPUT": str(output), "OUTPUT": str(output), "COMMAND": COMMAND})
    assert output.read_bytes() == kept


def test_a_failing_command_reports_its_last_line(provider, output, tmp_path):
    fake = tmp_path / "ccexpert"
    fake.write_text("#!/bin/sh\necho 'ccexpert report: something went wrong' >&2\nexit 2\n")
    fake.chmod(0o755)
    with pytest.raises(QgsProcessingException, match="could not be made: ccexpert report: something went wrong"):
        report({"INPUT": str(output), "OUTPUT": str(tmp_path / "r.html"), "COMMAND": str(fake)})
