"""A GeoPackage carrying its default style opens styled in QGIS with no plugin involved (browser panel, drag and
drop, qgis_process outputs): rule-based changed/no-change symbols, caption labels within a scale range, map tip."""

from __future__ import annotations

from osgeo import ogr, osr
from qgis.core import QgsVectorLayer


def _gpkg(path) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("change_captions", srs, ogr.wkbPolygon)
    for name, kind in (("status", ogr.OFTString), ("changed", ogr.OFTInteger), ("caption", ogr.OFTString)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetField("status", "ok")
    feature.SetField("changed", 1)
    feature.SetField("caption", "a house is built")
    feature.SetGeometry(ogr.CreateGeometryFromWkt("POLYGON ((0 0, 192 0, 192 192, 0 192, 0 0))"))
    layer.CreateFeature(feature)
    ds = None
    return str(path)


def test_written_default_style_is_what_qgis_opens(qgis_app, tmp_path):
    from ccexpert_changes.about import style_path
    from ccexpert_changes.core.style_table import write_default_style

    path = _gpkg(tmp_path / "out.gpkg")
    plain = QgsVectorLayer(f"{path}|layername=change_captions", "plain", "ogr")
    assert plain.isValid() and plain.renderer().type() == "singleSymbol" and not plain.labelsEnabled()
    with open(style_path(), encoding="utf-8") as f:
        write_default_style(path, "change_captions", f.read())
    layer = QgsVectorLayer(f"{path}|layername=change_captions", "styled", "ogr")
    assert layer.isValid() and layer.renderer().type() == "RuleRenderer"
    assert [r.label() for r in layer.renderer().rootRule().children()][:2] == ["Changed", "No change"]
    assert layer.labelsEnabled() and "caption" in layer.mapTipTemplate()
    changed_labels = layer.labeling().rootRule().children()[0].settings()
    assert changed_labels.scaleVisibility and changed_labels.minimumScale > changed_labels.maximumScale
    assert layer.featureCount() == 1
