"""The shipped style beyond the map (issue 25.13): the attribute table opens with the caption first and wide,
Changed as a checkbox and the technical columns hidden; the Error symbol is unlike Changed; map tips and labels
mark captions of the demo model."""

from __future__ import annotations

from qgis.core import (
    QgsExpression,
    QgsExpressionContext,
    QgsExpressionContextUtils,
    QgsVectorLayer,
)
from test_layer_style import CHANGED, _gpkg

DEMO = (CHANGED[0], {**CHANGED[1], "model": "ccexpert-demo-synthetic"})
REAL = (CHANGED[0], {**CHANGED[1], "model": "ccexpert-7b", "tile_id": "r00000_c00001_abcdef01"})


def _layer(tmp_path) -> QgsVectorLayer:
    from ccexpert_changes.core.style_table import write_shipped_style

    path = _gpkg(tmp_path / "out.gpkg", [DEMO, REAL])
    write_shipped_style(path, "change_captions")
    layer = QgsVectorLayer(f"{path}|layername=change_captions", "styled", "ogr")
    assert layer.isValid()
    return layer


def _context(layer, feature) -> QgsExpressionContext:
    context = QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(layer))
    context.setFeature(feature)
    return context


def test_attribute_table_caption_first_and_wide_changed_checkbox_technical_hidden(qgis_app, tmp_path):
    layer = _layer(tmp_path)
    columns = layer.attributeTableConfig().columns()
    visible = [c.name for c in columns if not c.hidden and c.name]
    hidden = {c.name for c in columns if c.hidden}
    assert visible[:3] == ["caption", "changed", "confidence"]
    assert next(c.width for c in columns if c.name == "caption") >= 400
    assert {"fid", "tile_id", "nodata_before", "nodata_after", "model", "backend", "run_id", "created_utc"} <= hidden
    setup = layer.editorWidgetSetup(layer.fields().indexOf("changed"))
    assert setup.type() == "CheckBox" and setup.config()["CheckedState"] == "1"


def test_error_symbol_is_not_an_orange_outline_like_changed(qgis_app, tmp_path):
    layer = _layer(tmp_path)
    symbols = {rule.label(): rule.symbol().symbolLayer(0) for rule in layer.renderer().rootRule().children()}
    changed, error = symbols["Changed"], symbols["Error (not captioned)"]
    assert changed.strokeColor().name() != error.strokeColor().name()
    assert abs(changed.strokeColor().hue() - error.strokeColor().hue()) > 60  # orange vs magenta-red
    assert error.brushStyle() != changed.brushStyle()  # hatched, not a light tint


def test_map_tips_and_labels_mark_demo_captions(qgis_app, tmp_path):
    layer = _layer(tmp_path)
    features = {f["model"]: f for f in layer.getFeatures()}
    tip = layer.mapTipTemplate()
    demo_tip = QgsExpression.replaceExpressionText(tip, _context(layer, features["ccexpert-demo-synthetic"]))
    real_tip = QgsExpression.replaceExpressionText(tip, _context(layer, features["ccexpert-7b"]))
    assert "DEMO model" in demo_tip and "a house is built" in demo_tip
    assert "DEMO" not in real_tip and "a house is built" in real_tip
    settings = layer.labeling().rootRule().children()[0].settings()
    assert settings.isExpression
    label = QgsExpression(settings.fieldName)
    assert label.evaluate(_context(layer, features["ccexpert-demo-synthetic"])) == "[demo] a house is built"
    assert label.evaluate(_context(layer, features["ccexpert-7b"])) == "a house is built"
