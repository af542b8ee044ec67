"""The plugin's area of interest follows the rule of ``ccexpert describe`` (issue 24, finding 4): a bow-tie keeps both
lobes with a warning, a NaN coordinate is refused naming the feature, a whole-globe AOI in degrees and a south-up
Before raster are not refused as "do not overlap"; a raster smaller than one chip is refused (issue 25, finding 4).
``make_plan`` runs without the network, so no backend here."""

from __future__ import annotations

import math

import pytest
from conftest import RecordingFeedback
from plugin_rasters import ORIGIN, textured, write_tif
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsLineString,
    QgsPoint,
    QgsPointXY,
    QgsPolygon,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProject,
    QgsVectorLayer,
)

UNIT = 192.0  # one 384 px chip at 0.5 m
X0, Y0 = ORIGIN


def at(col: float, row: float) -> QgsPointXY:
    return QgsPointXY(X0 + col * UNIT, Y0 - row * UNIT)


class WarningFeedback:
    @staticmethod
    def make():
        feedback = RecordingFeedback.make()
        feedback.warnings = []
        feedback.pushWarning = lambda text: feedback.warnings.append(text)
        return feedback


@pytest.fixture
def pair(tmp_path):
    gt = (ORIGIN[0], 0.5, 0.0, ORIGIN[1], 0.0, -0.5)
    image = textured(1152, 1152)
    return write_tif(tmp_path / "b.tif", image, gt), write_tif(tmp_path / "a.tif", image // 2 + 3, gt)


def layer(crs: str, *geometries: QgsGeometry) -> QgsVectorLayer:
    aoi = QgsVectorLayer(f"Polygon?crs={crs}", "aoi", "memory")
    features = []
    for geometry in geometries:
        feature = QgsFeature()
        feature.setGeometry(geometry)
        features.append(feature)
    aoi.dataProvider().addFeatures(features)
    QgsProject.instance().addMapLayer(aoi)
    return aoi


def plan(provider, before, after, aoi, feedback):
    from ccexpert_changes.planning import DescribeParameters, make_plan

    alg = QgsApplication.processingRegistry().createAlgorithmById("ccexpert:describe_changes")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    params = {"BEFORE": str(before), "AFTER": str(after)}
    if aoi is not None:
        params["AOI"] = aoi.id()
    return make_plan(DescribeParameters.read(alg, params, context), context, feedback, 384)


def cells(p) -> set[tuple[int, int]]:
    return {(c.row, c.col) for c in p.grid.chips(p.bounds, p.keep)}


def test_a_bow_tie_keeps_both_lobes_and_warns(provider, pair, qgis_iface):
    bow = QgsGeometry.fromPolygonXY([[at(0.1, 0.1), at(2.9, 2.9), at(2.9, 0.1), at(0.1, 2.9), at(0.1, 0.1)]])
    assert not bow.isGeosValid()
    feedback = WarningFeedback.make()
    got = cells(plan(provider, *pair, layer("EPSG:32615", bow), feedback))
    assert {(r, 0) for r in range(3)} <= got and {(r, 2) for r in range(3)} <= got, sorted(got)
    assert any("not a valid polygon" in w and "repaired" in w for w in feedback.warnings), feedback.warnings


def test_a_nan_coordinate_is_refused_naming_the_feature(provider, pair):
    ring = QgsLineString(
        [
            QgsPoint(X0 + 10, Y0 - 10),
            QgsPoint(X0 + 100, Y0 - 10),
            QgsPoint(math.nan, Y0 - 50),
            QgsPoint(X0 + 10, Y0 - 10),
        ]
    )
    aoi = layer("EPSG:32615", QgsGeometry(QgsPolygon(ring)))
    with pytest.raises(QgsProcessingException, match="has a coordinate that is not a number"):
        plan(provider, *pair, aoi, WarningFeedback.make())


def test_a_whole_globe_aoi_in_degrees_covers_every_chip(provider, pair):
    globe = QgsGeometry.fromPolygonXY(
        [
            [
                QgsPointXY(-180, -90),
                QgsPointXY(180, -90),
                QgsPointXY(180, 90),
                QgsPointXY(-180, 90),
                QgsPointXY(-180, -90),
            ]
        ]
    )
    p = plan(provider, *pair, layer("EPSG:4326", globe), WarningFeedback.make())
    assert p.count == 9 and cells(p) == {(r, c) for r in range(3) for c in range(3)}


def test_a_south_up_pair_is_planned(provider, tmp_path):
    gt = (ORIGIN[0], 0.5, 0.0, ORIGIN[1] - 576, 0.0, 0.5)  # row 0 is the southern edge
    image = textured(1152, 1152)
    before = write_tif(tmp_path / "b.tif", image, gt)
    after = write_tif(tmp_path / "a.tif", image // 2 + 3, gt)
    p = plan(provider, before, after, None, WarningFeedback.make())
    assert p.count == 9


def test_a_raster_smaller_than_one_chip_is_refused_naming_the_chip_size_that_fits(provider, tmp_path):
    """Issue 25.4: 102 px at 10 m used to plan one padded chip, skipped as nodata, with a polygon past the imagery."""
    gt = (ORIGIN[0], 10.0, 0.0, ORIGIN[1], 0.0, -10.0)
    image = textured(102, 102)
    before = write_tif(tmp_path / "b.tif", image, gt)
    after = write_tif(tmp_path / "a.tif", image // 2 + 3, gt)
    with pytest.raises(QgsProcessingException, match="102 x 102 pixels, smaller than one chip of 384 x 384"):
        plan(provider, before, after, None, WarningFeedback.make())


def test_a_south_up_pair_with_a_whole_globe_aoi_is_described_end_to_end(run_describe, tmp_path):
    """The whole run, not only the plan: every chip captioned, polygons inside the raster, tiles without overlaps."""
    from conftest import read_layer

    gt = (ORIGIN[0], 0.5, 0.0, ORIGIN[1] - 576, 0.0, 0.5)  # row 0 is the southern edge
    image = textured(1152, 1152)
    before = write_tif(tmp_path / "b.tif", image, gt)
    after = write_tif(tmp_path / "a.tif", image // 2 + 3, gt)
    globe = QgsGeometry.fromPolygonXY(
        [
            [
                QgsPointXY(-180, -90),
                QgsPointXY(180, -90),
                QgsPointXY(180, 90),
                QgsPointXY(-180, 90),
                QgsPointXY(-180, -90),
            ]
        ]
    )
    out = tmp_path / "south_up.gpkg"
    results, _ = run_describe(
        {"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "AOI": layer("EPSG:4326", globe).id()}
    )
    rows = read_layer(out)
    assert results["TILES"] == len(rows) == 9 and all(r["status"] == "ok" for r in rows)
    for r in rows:
        xmin, ymin, xmax, ymax = r["bbox"]
        assert X0 - 1e-6 <= xmin < xmax <= X0 + 576 + 1e-6 and Y0 - 576 - 1e-6 <= ymin < ymax <= Y0 + 1e-6
    area = sum((r["bbox"][2] - r["bbox"][0]) * (r["bbox"][3] - r["bbox"][1]) for r in rows)
    assert area == pytest.approx(576 * 576)
    # the described area (the globe clipped to the rasters) travels in the run metadata, for the report's outline
    import json

    from osgeo import gdal, ogr

    ds = gdal.OpenEx(str(out))
    meta = json.loads(ds.GetLayerByName("change_captions").GetMetadataItem("ccexpert_describe"))
    ds = None
    described = ogr.CreateGeometryFromWkt(meta["aoi"])
    assert described is not None and described.GetArea() == pytest.approx(576 * 576, rel=1e-6)


def test_the_area_is_checked_before_the_chip_grid_as_describe_does(provider, tmp_path):
    """Issue 26: the grid is laid once, over the described area, so an extent outside the rasters is named before a
    raster smaller than one chip (``ccexpert describe`` refuses an AOI outside the rasters first too); on the old
    plan the chip size was refused first."""
    from ccexpert_changes.planning import DescribeParameters, make_plan

    gt = (ORIGIN[0], 10.0, 0.0, ORIGIN[1], 0.0, -10.0)
    before = write_tif(tmp_path / "b.tif", textured(102, 102), gt)
    after = write_tif(tmp_path / "a.tif", textured(102, 102, 1), gt)
    alg = QgsApplication.processingRegistry().createAlgorithmById("ccexpert:describe_changes")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    far = f"{X0 + 1e5},{X0 + 1e5 + 50},{Y0 - 50},{Y0} [EPSG:32615]"
    params = DescribeParameters.read(alg, {"BEFORE": str(before), "AFTER": str(after), "EXTENT": far}, context)
    with pytest.raises(QgsProcessingException, match="The extent .* does not overlap the area covered by both"):
        make_plan(params, context, WarningFeedback.make(), 384)
