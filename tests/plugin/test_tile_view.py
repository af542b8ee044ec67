"""Layer action "Show before/after" (issue 25, finding 10): the clicked tile's chip, before and after, read again from
the run's rasters with its grid and stretch; offered on change-captions layers only; a clear message when the
rasters moved."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from plugin_rasters import pair
from qgis.core import QgsApplication, QgsVectorLayer
from qgis.gui import QgsGui


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return {}


@pytest.fixture
def output(run_describe, tmp_path_factory, made):
    """768 x 768 px, 2 x 2 chips; a bright square painted on the after date in chip (0, 1)."""
    if "out" not in made:
        work = tmp_path_factory.mktemp("tiles")
        before, after = pair(work, h=768, w=768, changes=((60, 460, 300, 700),))
        out = work / "captions.gpkg"
        run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out)})
        made.update(out=out, before=before, after=after)
    return made


def captions_layer(path) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{path}|layername=change_captions", "captions", "ogr")
    assert layer.isValid()
    return layer


def feature_at(layer, row: int, col: int):
    """The feature of grid chip (row, col); the layer counts from 1."""
    return next(f for f in layer.getFeatures() if (f["row"], f["col"]) == (row + 1, col + 1))


def test_the_dialog_shows_the_chip_the_model_saw(qgis_app, output):
    from ccexpert_changes.tile_view import SHOWN_SIZE, ShowBeforeAfterAction

    action = ShowBeforeAfterAction()
    layer = captions_layer(output["out"])
    assert action.canRunUsingLayer(layer)
    assert not action.canRunUsingLayer(QgsVectorLayer("Polygon?crs=EPSG:32615", "other", "memory"))
    feature = feature_at(layer, 0, 1)
    dialog = action.dialog_for(layer, feature)
    assert dialog.windowTitle() == "Row 1, column 2" and dialog.caption.text() == feature["caption"]
    from ccexpert_changes.tile_view import tile_images

    before, after = tile_images(str(output["out"]), feature["tile_id"])
    assert before.shape == after.shape == (SHOWN_SIZE, SHOWN_SIZE, 3) and before.dtype == np.uint8
    # grid chip (0, 1) covers columns 384-768: the painted square (rows 60-300, columns 460-700) is in the after
    # date only, at (60..300, 76..316) inside the chip
    square = (slice(80, 280), slice(100, 300))
    assert np.abs(after[square].astype(int) - (250, 240, 30)).max() <= 2
    assert np.abs(before[square].astype(int) - (250, 240, 30)).max() > 50
    assert np.array_equal(before[300:], after[300:])  # elsewhere both dates are the same scene


def test_moved_rasters_give_a_clear_message(qgis_app, output, tmp_path):
    from ccexpert_changes.tile_view import ShowBeforeAfterAction

    moved = tmp_path / "moved.tif"
    shutil.move(output["before"], moved)
    try:
        layer = captions_layer(output["out"])
        with pytest.raises(ValueError, match="rasters of this layer cannot be read"):
            ShowBeforeAfterAction().dialog_for(layer, feature_at(layer, 0, 0))
    finally:
        shutil.move(moved, output["before"])


def test_init_gui_registers_the_action_and_unload_removes_it(qgis_app, qgis_iface, qgis_processing, output):
    import ccexpert_changes

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("ccexpert")
    if existing is not None:
        registry.removeProvider(existing)
    layer = captions_layer(output["out"])
    plugin = ccexpert_changes.classFactory(qgis_iface)
    plugin.initGui()
    try:
        names = [a.text() for a in QgsGui.mapLayerActionRegistry().mapLayerActions(layer)]
        assert "Show before/after" in names
        assert registry.algorithmById("ccexpert:create_report") is not None
    finally:
        plugin.unload()
    assert "Show before/after" not in [a.text() for a in QgsGui.mapLayerActionRegistry().mapLayerActions(layer)]


def test_create_report_menu_item_opens_the_algorithm_with_the_active_captions_layer(
    qgis_app, qgis_iface, qgis_processing, output, monkeypatch
):
    import ccexpert_changes
    import processing

    opened = []
    monkeypatch.setattr(processing, "execAlgorithmDialog", lambda alg_id, params: opened.append((alg_id, params)))
    registry = QgsApplication.processingRegistry()
    if registry.providerById("ccexpert") is not None:  # registered by a fixture: the plugin registers its own
        registry.removeProvider(registry.providerById("ccexpert"))
    plugin = ccexpert_changes.classFactory(qgis_iface)
    plugin.initGui()
    try:
        layer = captions_layer(output["out"])
        other = QgsVectorLayer("Polygon?crs=EPSG:32615", "other", "memory")
        for active in (layer, other):
            monkeypatch.setattr(plugin.iface, "activeLayer", lambda active=active: active)
            next(a for a in plugin.actions if a.text() == "Create report…").trigger()
    finally:
        plugin.unload()
    assert opened == [("ccexpert:create_report", {"INPUT": layer}), ("ccexpert:create_report", {})]
