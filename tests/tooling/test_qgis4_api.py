"""scripts/qgis4_api.py: the plugin uses no name that QGIS 4's Python API lacks, checked statically against
tests/plugin/data/qgis4_api.json (names read from the Qt 6 build's .sip.in files of qgis/QGIS), since no QGIS 4
runs on our machines. metadata.txt declares QGIS 4 support exactly when this check and the Qt 6 check pass."""

from __future__ import annotations

import configparser
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "qgis4_api.py"
DATA = REPO / "tests" / "plugin" / "data" / "qgis4_api.json"
PLUGIN = REPO / "qgis_plugin" / "ccexpert_changes"

_spec = importlib.util.spec_from_file_location("qgis4_api", SCRIPT)
assert _spec and _spec.loader
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)


@pytest.fixture(scope="module")
def data() -> dict:
    return api.load(DATA)


def used(source: str, data: dict | None = None) -> dict[str, dict[str, list[str]]]:
    present = (lambda name: not api.missing([name], data)) if data else (lambda name: True)
    return api.names_in_source(source, "x.py", present)


def test_data_file_names_its_source(data):
    source = data["source"]
    assert source["repository"] == "qgis/QGIS" and source["read_on"]
    assert "not pinned" in source["tag"], "say plainly that the commits are not a verified 4.0 tag"
    for module, entry in data["modules"].items():
        for name, cls in (entry["names"] or {}).items():
            assert cls["source"] and cls["checked"] in ("read", "file", "unpinned"), (module, name)
            assert cls["checked"] == "unpinned" or len(cls["commit"]) == 40, (module, name)


def test_old_enum_names_are_reported_as_gone(data):
    """The names the plugin used before compat.py: each is read to be absent from QGIS 4's bindings."""
    old = (
        "from qgis.core import QgsProcessing, QgsProcessingAlgorithm, QgsProcessingParameterDefinition\n"
        "from qgis.gui import QgsMapLayerAction\n"
        "a = [QgsProcessing.SourceType.TypeVectorPolygon]\n"
        "b = QgsProcessingAlgorithm.Flag.FlagCanCancel\n"
        "c = QgsProcessingParameterDefinition.Flag.FlagAdvanced\n"
        "d = QgsMapLayerAction.Target.SingleFeature\n"
    )
    problems = api.missing(used(old)["used"], data)
    assert len(problems) == 4 and all("is gone in QGIS 4" in p for p in problems), problems
    new = (
        "from qgis.core import Qgis\n"
        "a = [Qgis.ProcessingSourceType.VectorPolygon]\nb = Qgis.ProcessingAlgorithmFlag.CanCancel\n"
        "c = Qgis.ProcessingParameterFlag.Advanced\nd = Qgis.MapLayerActionTarget.SingleFeature\n"
    )
    assert api.missing(used(new)["used"], data) == []


def test_unrecorded_names_fail_closed(data):
    """A name nobody looked up in the QGIS 4 sources fails until it is recorded; so does an unknown module."""
    source = "from qgis.core import QgsGeometry, QgsBrandNewThing\nimport processing.gui.Nowhere\nQgsGeometry.fromWkt\n"
    problems = api.missing(used(source)["used"], data)
    assert any("QgsBrandNewThing not recorded" in p for p in problems)
    assert any("QgsGeometry.fromWkt not recorded" in p for p in problems)
    assert any(p.startswith("processing.gui.Nowhere:") and "not recorded" in p for p in problems)


def test_version_branches_check_only_what_qgis4_runs(data):
    source = (
        "from qgis.core import Qgis, QgsProcessing\n"
        "if hasattr(Qgis, 'ProcessingSourceType'):\n    A = Qgis.ProcessingSourceType.VectorPolygon\n"
        "else:\n    A = QgsProcessing.SourceType.TypeVectorPolygon\n"
        "if Qgis.versionInt() >= 33800:\n    B = Qgis.GeometryType.Polygon\nelse:\n    B = QgsProcessing.SourceType\n"
        "if Qgis.versionInt() < 33000:\n    C = QgsProcessing.SourceType\n"
    )
    found = used(source, data)
    assert "qgis.core.Qgis.ProcessingSourceType.VectorPolygon" in found["used"]
    assert "qgis.core.Qgis.GeometryType.Polygon" in found["used"]
    assert not any("SourceType.TypeVectorPolygon" in n or n.endswith(".SourceType") for n in found["used"])
    assert "qgis.core.QgsProcessing.SourceType.TypeVectorPolygon" in found["legacy"]
    assert "qgis.core.Qgis.ProcessingSourceType" in found["optional"]
    assert api.missing(found["used"], data) == []


def test_hasattr_on_a_name_qgis4_lacks_checks_the_else_branch(data):
    """If QGIS 4 lacks the tested name, its else branch is what runs there, so that branch is checked."""
    source = (
        "from qgis.core import Qgis, QgsProcessing\n"
        "if hasattr(Qgis, 'NoSuchEnum'):\n    A = Qgis.NoSuchEnum.X\n"
        "else:\n    A = QgsProcessing.SourceType.TypeVectorPolygon\n"
    )
    found = used(source, data)
    assert "qgis.core.QgsProcessing.SourceType.TypeVectorPolygon" in found["used"]
    assert "qgis.core.Qgis.NoSuchEnum.X" in found["legacy"]
    assert any("is gone in QGIS 4" in p for p in api.missing(found["used"], data))


def test_unconditional_use_of_an_old_name_next_to_compat_still_fails(data):
    """A guard elsewhere in the file does not excuse an old name used at module level."""
    source = (
        "from qgis.core import Qgis, QgsProcessing\n"
        "if hasattr(Qgis, 'ProcessingSourceType'):\n    A = Qgis.ProcessingSourceType.VectorPolygon\n"
        "B = QgsProcessing.SourceType.TypeVectorPolygon\n"
    )
    assert any("SourceType is gone" in p for p in api.missing(used(source, data)["used"], data))


def test_inherited_methods_are_checked_on_the_base_class(data):
    """self.x in a subclass is the QGIS base's x unless the subclass defines it; bases resolve through the data."""
    source = (
        "from qgis.core import QgsProcessingAlgorithm\nfrom qgis.gui import QgsMapLayerAction\n"
        "class Alg(QgsProcessingAlgorithm):\n"
        "    LIMIT = 3\n"
        "    def helper(self):\n        return self.LIMIT\n"
        "    def processAlgorithm(self, parameters, context, feedback):\n"
        "        self.cache = self.parameterAsString(parameters, 'A', context)\n"
        "        return {'x': self.helper(), 'y': self.cache, 'z': self.parameterAsTeapot()}\n"
        "class Action(QgsMapLayerAction):\n    def go(self):\n        return self.parent()\n"
    )
    found = used(source)["used"]
    assert "qgis.core.QgsProcessingAlgorithm.parameterAsString" in found
    assert "qgis.gui.QgsMapLayerAction.parent" in found
    assert not any(n.endswith((".helper", ".cache", ".LIMIT", ".processAlgorithm")) for n in found)
    problems = api.missing(found, data)
    assert problems == [
        "qgis.core.QgsProcessingAlgorithm.parameterAsTeapot: QgsProcessingAlgorithm.parameterAsTeapot "
        "not recorded in the QGIS 4 data file"
    ], problems


def test_bad_data_file_is_a_clear_error(tmp_path):
    broken = tmp_path / "api.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read the QGIS 4 API data file"):
        api.load(broken)
    broken.write_text(json.dumps({"modules": {"qgis.core": {"names": []}}}), encoding="utf-8")
    with pytest.raises(ValueError, match="needs a 'names' table"):
        api.load(broken)
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(tmp_path / "absent.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "cannot read" in run.stderr


def test_cli_lists_used_names_as_json():
    run = subprocess.run([sys.executable, str(SCRIPT), "--used"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    names = json.loads(run.stdout)
    assert set(names) == {"used", "optional", "legacy"}
    assert "qgis.core.Qgis.ProcessingSourceType.VectorPolygon" in names["used"]
    assert "qgis.core.QgsProcessing.SourceType.TypeVectorPolygon" in names["legacy"]


def test_plugin_uses_only_names_qgis4_has_and_metadata_says_so(data):
    names, problems = api.check(PLUGIN, data)
    assert len(names["used"]) > 100, "the walk found the plugin's names"
    assert problems == [], "\n".join(problems)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(PLUGIN / "metadata.txt", encoding="utf-8")
    general = parser["general"]
    assert general.get("supportsQt6", "False").strip().lower() == "true"
    assert general.get("qgisMaximumVersion", "").strip() == "4.99"
