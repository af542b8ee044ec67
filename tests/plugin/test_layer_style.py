"""What an analyst sees of an output layer in QGIS 3.22 (issue 17): changed tiles outlined over readable imagery,
captions labelled in map units within readable pixel sizes, map tips, field aliases, and the layer's title/abstract
(the demo model flagged) in its metadata."""

from __future__ import annotations

from osgeo import ogr, osr
from qgis.core import QgsVectorLayer

FIELD_KINDS = {"str": ogr.OFTString, "int": ogr.OFTInteger, "real": ogr.OFTReal}


def _gpkg(path, features) -> str:
    from ccexpert_changes.core.fields import FIELDS

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("change_captions", srs, ogr.wkbPolygon)
    for name, kind in FIELDS:
        layer.CreateField(ogr.FieldDefn(name, FIELD_KINDS[kind]))
    for wkt, values in features:
        feature = ogr.Feature(layer.GetLayerDefn())
        for key, value in values.items():
            feature.SetField(key, value)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    ds = None
    return str(path)


CHANGED = (
    "POLYGON ((0 0, 192 0, 192 192, 0 192, 0 0))",
    {
        "tile_id": "r00000_c00000_abcdef01",
        "status": "ok",
        "changed": 1,
        "caption": "a house is built",
        "confidence": 0.873,
    },
)
UNCHANGED = (
    "POLYGON ((192 0, 384 0, 384 192, 192 192, 192 0))",
    {
        "tile_id": "r00000_c00001_abcdef01",
        "status": "ok",
        "changed": 0,
        "caption": "nothing has changed",
        "confidence": 0.9,
    },
)


def _styled(tmp_path):
    from ccexpert_changes.core.style_table import write_shipped_style

    path = _gpkg(tmp_path / "out.gpkg", [CHANGED, UNCHANGED])
    write_shipped_style(path, "change_captions")
    layer = QgsVectorLayer(f"{path}|layername=change_captions", "styled", "ogr")
    assert layer.isValid()
    return path, layer


def test_labels_in_map_units_with_readable_pixel_limits_and_a_scale_range(qgis_app, tmp_path):
    from qgis.core import QgsUnitTypes

    _, layer = _styled(tmp_path)
    settings = layer.labeling().rootRule().children()[0].settings()
    text = settings.format()
    assert text.sizeUnit() == QgsUnitTypes.RenderMapUnits
    assert 8 <= text.size() <= 20  # metres: a readable fraction of a 384 px chip at 0.5 m (192 m)
    assert settings.fontLimitPixelSize and 6 <= settings.fontMinPixelSize <= 8
    assert 24 <= settings.fontMaxPixelSize <= 48
    # QGIS maps the XML's scaleMax to minimumScale (the most zoomed-out scale that still shows labels)
    assert settings.scaleVisibility and settings.minimumScale >= 10000 and settings.maximumScale <= 1


def test_map_tip_display_expression_and_aliases(qgis_app, tmp_path):
    from ccexpert_changes.core.fields import FIELD_ALIASES
    from qgis.core import QgsExpression, QgsExpressionContext, QgsExpressionContextUtils

    _, layer = _styled(tmp_path)
    assert layer.displayExpression() == '"caption"'
    assert "caption" in layer.mapTipTemplate()
    for name, alias in FIELD_ALIASES.items():
        assert layer.attributeAlias(layer.fields().indexOf(name)) == alias, name
    # the map tip template evaluates for a tile (no parse errors): caption, confidence and status shown
    feature = next(layer.getFeatures())
    context = QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(layer))
    context.setFeature(feature)
    tip = QgsExpression.replaceExpressionText(layer.mapTipTemplate(), context)
    assert "a house is built" in tip and "0.87" in tip and "Status ok" in tip


def test_changed_tiles_are_an_outline_over_readable_imagery(qgis_app, tmp_path):
    """Rendered over a white background, the inside of a changed tile stays nearly white (a light tint), its edge is
    a strong outline, and an unchanged tile is not filled at all."""
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings, QgsRectangle
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    _, layer = _styled(tmp_path)
    layer.setLabelsEnabled(False)
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(QgsRectangle(0, 0, 384, 192))
    settings.setOutputSize(QSize(400, 200))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    inside = QColor(image.pixel(60, 60))
    assert min(inside.red(), inside.green(), inside.blue()) > 180, inside.name()  # the imagery shows through
    edge = min((QColor(image.pixel(x, 100)) for x in range(6)), key=lambda c: c.blue())
    assert edge.red() > 200 and edge.blue() < 80, edge.name()  # an orange outline along the tile's edge
    unchanged = QColor(image.pixel(300, 60))
    assert unchanged.name() == "#ffffff"


def test_apply_style_sets_aliases_and_display_expression_on_a_plain_layer(qgis_app, tmp_path, monkeypatch):
    from ccexpert_changes import layer_style

    path = _gpkg(tmp_path / "plain.gpkg", [CHANGED])
    layer = QgsVectorLayer(f"{path}|layername=change_captions", "plain", "ogr")
    monkeypatch.setattr(layer_style, "style_path", lambda: str(tmp_path / "missing.qml"))
    assert layer_style.apply_style(layer) is False
    assert layer.displayExpression() == '"caption"' and layer.mapTipTemplate()
    assert layer.attributeAlias(layer.fields().indexOf("caption")) == "What changed"
    layer_style.enable_map_tips()  # no main window in the tests: does nothing, raises nothing


def test_qgis_shows_the_demo_flag_in_the_layer_metadata(qgis_app, tmp_path):
    from ccexpert_changes.core.layer_metadata import run_abstract, run_title, write_abstract

    info = {"model_name": "ccexpert-demo-synthetic", "demo": True}
    path = _gpkg(tmp_path / "demo.gpkg", [CHANGED])
    write_abstract(path, "change_captions", run_title(info), run_abstract(info, {"captioned": 1, "changed": 1}))
    layer = QgsVectorLayer(f"{path}|layername=change_captions", "demo", "ogr")
    assert layer.metadata().title() == "CCExpert change captions (DEMO model)"
    assert (
        layer.metadata()
        .abstract()
        .startswith(
            "Made with the DEMO model ccexpert-demo-synthetic: it only knows "
            "synthetic scenes; captions of real imagery are not meaningful."
        )
    )
    assert "DEMO model ccexpert-demo-synthetic" in layer.htmlMetadata()  # Layer Properties > Information


def _tile(col: int, kind: str | None, changed: int) -> tuple[str, dict]:
    x = col * 192
    values = {"tile_id": f"r00000_c{col:05d}_abcdef01", "status": "ok", "changed": changed, "caption": "c"}
    if kind is not None:
        values["change_kind"] = kind
    return f"POLYGON (({x} 0, {x + 192} 0, {x + 192} 192, {x} 192, {x} 0))", values


def test_changed_tiles_are_coloured_by_kind_of_change_with_a_readable_legend(qgis_app, tmp_path):
    """Issue 27: the legend lists the kinds of change under "Changed"; tiles of different kinds get different
    tints, every changed tile keeps the orange outline, unchanged tiles stay unfilled."""
    from ccexpert_changes.core.fact_fields import CHANGE_KINDS
    from ccexpert_changes.core.style_table import write_shipped_style
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings, QgsRectangle
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    kinds = ["buildings appeared", "buildings disappeared", "vegetation lost", "sports fields appeared"]
    features = [_tile(i, kind, 1) for i, kind in enumerate(kinds)] + [_tile(4, "no change", 0)]
    path = _gpkg(tmp_path / "kinds.gpkg", features)
    write_shipped_style(path, "change_captions")
    layer = QgsVectorLayer(f"{path}|layername=change_captions", "kinds", "ogr")
    layer.setLabelsEnabled(False)
    changed_rule = next(r for r in layer.renderer().rootRule().children() if r.label() == "Changed")
    children = changed_rule.children()
    labels = [r.label() for r in children]
    assert labels[:2] == ["Buildings appeared", "Buildings disappeared"] and "Vegetation lost" in labels
    assert children[-1].isElse()  # every other kind ("sports fields appeared", ...) still gets a tint
    for rule in children[:-1]:  # each filter names a value the parser can produce
        assert rule.filterExpression().split("'")[1] in CHANGE_KINDS
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(QgsRectangle(0, 0, 960, 192))
    settings.setOutputSize(QSize(1000, 200))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    centres = [QColor(image.pixel(100 + 200 * i, 100)) for i in range(5)]
    tints = {c.name() for c in centres[:4]}
    assert len(tints) == 4, tints  # four kinds, four tints
    assert all(min(c.red(), c.green(), c.blue()) > 150 for c in centres[:4])  # imagery still shows through
    assert centres[4].name() == "#ffffff"  # the unchanged tile is not filled
    edge = min((QColor(image.pixel(x, 100)) for x in range(6)), key=lambda c: c.blue())
    assert edge.red() > 200 and edge.blue() < 80, edge.name()  # the changed outline as before
