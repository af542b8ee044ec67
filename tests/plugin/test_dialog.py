"""The toolbar dialog (issue 17): two different rasters preselected, the older as Before; the confirmation counts
only the chips a run will send (RESUME keeps what OUTPUT holds); the message bar flags a demo-model run."""

from __future__ import annotations

import pytest
from osgeo import gdal, ogr, osr
from plugin_rasters import ORIGIN, pair, textured, write_tif
from qgis.core import QgsProject, QgsRasterLayer


@pytest.fixture
def dialog_module(qgis_app, qgis_processing):
    from ccexpert_changes import dialog

    return dialog


@pytest.fixture
def project(qgis_app):
    project = QgsProject.instance()
    project.removeAllMapLayers()
    yield project
    project.removeAllMapLayers()


def _tif(path, date=None):
    gt = (ORIGIN[0], 0.5, 0.0, ORIGIN[1], 0.0, -0.5)
    write_tif(path, textured(32, 32), gt)
    if date:
        ds = gdal.Open(str(path), gdal.GA_Update)
        ds.SetMetadataItem("TIFFTAG_DATETIME", date)
        ds = None
    return str(path)


def _add(project, path, name):
    layer = QgsRasterLayer(path, name, "gdal")
    assert layer.isValid()
    project.addMapLayer(layer)
    return layer


def test_the_screenshot_case_before_and_after_differ(dialog_module, project, tmp_path):
    """g2: "after" on top, "before (2019)" below; the dialog used to preselect "after" twice."""
    before = _add(project, _tif(tmp_path / "b.tif"), "before (2019)")
    after = _add(project, _tif(tmp_path / "a.tif"), "after")
    picked = dialog_module.preselect_rasters(project)
    assert picked["BEFORE"] is before and picked["AFTER"] is after


def test_older_date_in_metadata_is_before(dialog_module, project, tmp_path):
    newer = _add(project, _tif(tmp_path / "x.tif", "2021:06:01 10:00:00"), "ortho")
    older = _add(project, _tif(tmp_path / "y.tif", "2019:06:01 10:00:00"), "ortho")
    assert dialog_module.raster_date(newer) == "2021:06:01 10:00:00"
    picked = dialog_module.preselect_rasters(project)
    assert picked["BEFORE"] is older and picked["AFTER"] is newer


def test_dates_in_names_and_a_file_loaded_twice(dialog_module, project, tmp_path):
    path = _tif(tmp_path / "s2_20210501.tif")
    _add(project, path, "s2_20210501")
    second = _add(project, path, "s2_20210501 copy")  # the same file again: counts once
    assert dialog_module.preselect_rasters(project)["BEFORE"].source() == path
    assert "AFTER" not in dialog_module.preselect_rasters(project)
    project.removeMapLayer(second.id())
    older = _add(project, _tif(tmp_path / "s2_20190501.tif"), "s2_20190501")
    picked = dialog_module.preselect_rasters(project)
    assert picked["BEFORE"] is older and picked["AFTER"].source() == path


def test_no_rasters_nothing_preselected(dialog_module, project):
    assert dialog_module.preselect_rasters(project) == {}


def test_confirmation_wording(dialog_module):
    assert dialog_module.confirmation_text(120, 100) == (
        "This run will send 120 chips to the backend (more than the limit of 100 you set in 'Ask before runs of "
        "more chips than'). Continue?"
    )


def _output(path, tile_ids_and_statuses):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32615)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("change_captions", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("tile_id", ogr.OFTString))
    layer.CreateField(ogr.FieldDefn("status", ogr.OFTString))
    for tile_id, status in tile_ids_and_statuses:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("tile_id", tile_id)
        feature.SetField("status", status)
        feature.SetGeometry(ogr.CreateGeometryFromWkt("POLYGON ((0 0, 1 0, 1 1, 0 0))"))
        layer.CreateFeature(feature)
    ds = None
    return str(path)


def test_resume_counts_only_the_chips_still_to_send(dialog_module, provider, tmp_path):
    """A 1152 px pair at 384 px chips is 9 chips; the output holds 4 ok and 1 error: 5 will be sent."""
    from conftest import free_port
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    before, after = pair(tmp_path, h=1152, w=1152, changes=())
    alg = provider.algorithm("describe_changes").create()
    context = QgsProcessingContext()
    out = tmp_path / "resumed.gpkg"
    params = {
        "BEFORE": str(before),
        "AFTER": str(after),
        "BACKEND_URL": f"http://127.0.0.1:{free_port()}",
        "AUTHCFG": "",
        "MAX_CHIPS": 4,
        "OUTPUT": str(out),
        "RESUME": False,
    }
    plan = alg.plan(params, context, QgsProcessingFeedback(), 384)
    ids = [chip.tile_id for chip in plan.grid.chips(plan.bounds, plan.keep)]
    assert len(ids) == 9
    _output(
        out,
        [
            (ids[0], "ok"),
            (ids[1], "ok"),
            (ids[2], "ok"),
            (ids[3], "ok"),
            (ids[4], "error"),
            ("r09999_c09999_ffffffff", "ok"),
        ],
    )
    assert dialog_module.captioned_tiles(str(out)) == set(ids[:4]) | {"r09999_c09999_ffffffff"}
    count = dialog_module.DescribeChangesDialog._count
    assert count(None, alg, params, context) == (9, 9)  # RESUME off: everything is sent again
    assert count(None, alg, dict(params, RESUME=True), context) == (9, 5)
    assert dialog_module.captioned_tiles(str(tmp_path / "missing.gpkg")) == set()


class _Bar:
    def __init__(self):
        self.messages = []

    def pushMessage(self, title, text, level=None, duration=None):  # QGIS API name
        self.messages.append((text, level))


def test_demo_run_gets_a_warning_bar(dialog_module):
    from qgis.core import Qgis

    bar = _Bar()
    dialog_module.push_summary(bar, {"CAPTIONED": 25, "CHANGED": 8, "ERRORS": 0, "SKIPPED_NODATA": 11, "DEMO": 1})
    assert bar.messages[0] == (
        "25 tiles captioned, 8 changed, 0 errors, 11 skipped for nodata",
        Qgis.MessageLevel.Success,
    )
    text, level = bar.messages[1]
    assert text.startswith("Captions come from the demo model: ") and level == Qgis.MessageLevel.Warning
    bar = _Bar()
    dialog_module.push_summary(bar, {"CAPTIONED": 3, "CHANGED": 1, "ERRORS": 1, "SKIPPED_NODATA": 0, "DEMO": 0})
    assert len(bar.messages) == 1 and bar.messages[0][1] == Qgis.MessageLevel.Warning


def test_the_confirmation_leaves_out_chips_the_nodata_rule_will_skip(dialog_module, provider, tmp_path):
    """A 1152 px pair whose left third is nodata on both dates: 9 chips, 3 of them all nodata, 6 will be sent."""
    from conftest import free_port
    from qgis.core import QgsProcessingContext

    gt = (ORIGIN[0], 0.5, 0.0, ORIGIN[1], 0.0, -0.5)
    pixels = textured(1152, 1152)
    pixels[:, :, :384] = 0
    before = write_tif(tmp_path / "b.tif", pixels, gt, nodata=0)
    after = write_tif(tmp_path / "a.tif", pixels.copy(), gt, nodata=0)
    alg = provider.algorithm("describe_changes").create()
    params = {
        "BEFORE": str(before),
        "AFTER": str(after),
        "BACKEND_URL": f"http://127.0.0.1:{free_port()}",
        "AUTHCFG": "",
        "MAX_CHIPS": 4,
        "MAX_NODATA": 0.5,
        "OUTPUT": str(tmp_path / "o.gpkg"),
    }
    count = dialog_module.DescribeChangesDialog._count
    assert count(None, alg, params, QgsProcessingContext()) == (9, 6)
    assert count(None, alg, dict(params, MAX_CHIPS=100), QgsProcessingContext()) == (9, 9)  # no question asked
