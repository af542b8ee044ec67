"""Plugin layer change_areas (issue 27): QGIS dissolves overlapping tiles of one kind into one area, counts the
objects once (core.areas), and rewrites the layer instead of appending."""

from __future__ import annotations

from osgeo import ogr, osr
from qgis.core import NULL, QgsGeometry, QgsVectorLayer

FIELD_KINDS = {"str": ogr.OFTString, "int": ogr.OFTInteger, "real": ogr.OFTReal}


def _output(path, captions_by_cell, size=100.0, stride=80.0) -> str:
    from ccexpert_changes.core.fields import FIELDS, make_record

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("change_captions", srs, ogr.wkbPolygon)
    for name, kind in FIELDS:
        layer.CreateField(ogr.FieldDefn(name, FIELD_KINDS[kind]))
    for (row, col), caption in captions_by_cell.items():
        record = make_record(
            tile_id=f"r{row:05d}_c{col:05d}_abcdef01", row=row, col=col, status="ok", caption=caption, changed=True
        )
        feature = ogr.Feature(layer.GetLayerDefn())
        for key, value in record.items():
            if value is not None:
                feature.SetField(key, value)
        x, y = col * stride, -row * stride
        wkt = f"POLYGON (({x} {y - size}, {x + size} {y - size}, {x + size} {y}, {x} {y}, {x} {y - size}))"
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    ds = None
    return str(path)


def test_overlapping_tiles_of_one_kind_become_one_area(qgis_app, tmp_path):
    from ccexpert_changes.area_layer import write_change_areas

    path = _output(
        tmp_path / "out.gpkg",
        {
            (0, 0): "two houses are built on the right side",
            (0, 1): "two houses are built on the left side",  # the shared strip: not counted again
            (1, 1): "a house is built at the bottom",
            (1, 0): "many trees are removed",
        },
    )
    assert write_change_areas(path) == 2
    assert write_change_areas(path) == 2  # rewritten, not appended
    layer = QgsVectorLayer(f"{path}|layername=change_areas", "areas", "ogr")
    assert layer.isValid() and layer.featureCount() == 2
    areas = {f["change_kind"]: f for f in layer.getFeatures()}
    built = areas["buildings appeared"]
    assert (built["n_tiles"], built["n_objects"]) == (3, 3)
    assert built["tile_ids"] == "r00000_c00000_abcdef01,r00000_c00001_abcdef01,r00001_c00001_abcdef01"
    tiles = QgsVectorLayer(f"{path}|layername=change_captions", "tiles", "ogr")
    members = [f.geometry() for f in tiles.getFeatures() if f["change_kind"] == "buildings appeared"]
    union = QgsGeometry.unaryUnion(members)
    assert built.geometry().symDifference(union).isEmpty()  # the dissolved tiles, nothing more or less
    assert built.geometry().constGet().numGeometries() == 1  # one outline across the overlaps
    assert areas["vegetation lost"]["n_objects"] == NULL  # "many trees": no number


def test_areas_open_styled_by_kind_with_aliases(qgis_app, tmp_path):
    from ccexpert_changes.area_layer import write_change_areas
    from ccexpert_changes.core.areas import AREA_FIELD_ALIASES
    from ccexpert_changes.core.fact_fields import CHANGE_KINDS

    path = _output(tmp_path / "out.gpkg", {(0, 0): "two houses are built", (0, 1): "many trees are removed"})
    write_change_areas(path)
    layer = QgsVectorLayer(f"{path}|layername=change_areas", "areas", "ogr")  # its stored default style applies
    rules = layer.renderer().rootRule().children()
    assert rules[0].label() == "Buildings appeared" and rules[-1].isElse()
    assert all(r.filterExpression().split("'")[1] in CHANGE_KINDS for r in rules[:-1])
    for name, alias in AREA_FIELD_ALIASES.items():
        assert layer.attributeAlias(layer.fields().indexOf(name)) == alias
