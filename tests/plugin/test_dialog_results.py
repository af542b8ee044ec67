"""What an analyst keeps and sees after a run (issue 25.2, 25.5, 25.6, 25.13): the default output is a new file in
a folder that survives QGIS, each run's layer has its own name, the result becomes the active layer (map tips show
for the active layer only), the message bar keeps the counts visible with the demo and pixel-size warnings under
"More", and Before = After or rasters that do not overlap are refused before the backend is asked anything."""

from __future__ import annotations

import os
import tempfile

import pytest
from plugin_rasters import ORIGIN, pair, textured, write_tif
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)


@pytest.fixture
def project(qgis_app):
    project = QgsProject.instance()
    project.clear()
    yield project
    project.clear()


_KEEP: list = []  # the Python wrapper owns a created algorithm: keep it while its parameters are read


def _algorithm():
    alg = QgsApplication.processingRegistry().createAlgorithmById("ccexpert:describe_changes")
    _KEEP.append(alg)
    return alg


def test_default_output_is_a_new_file_next_to_the_saved_project(provider, project, tmp_path):
    """Was QgsProcessing.TEMPORARY_OUTPUT: a file in QGIS's temporary folder, deleted when QGIS closes."""
    project.setFileName(str(tmp_path / "site.qgz"))
    default = _algorithm().parameterDefinition("OUTPUT").defaultValue()
    assert default != "TEMPORARY_OUTPUT" and not str(default).startswith(tempfile.gettempdir() + "/processing")
    assert os.path.dirname(default) == str(tmp_path / "CCExpert changes")
    assert os.path.basename(default).startswith("ccexpert_changes_") and default.endswith(".gpkg")
    os.makedirs(os.path.dirname(default))
    with open(default, "wb") as f:
        f.write(b"an earlier result")
    again = _algorithm().parameterDefinition("OUTPUT").defaultValue()
    # a new name, the earlier result untouched (numbered within the same minute; a new minute is new by itself)
    first, second = os.path.splitext(default)[0], os.path.splitext(again)[0]
    assert again != default and (second == f"{first}_2" or not second.startswith(first))
    with open(default, "rb") as f:
        assert f.read() == b"an earlier result"


def test_default_folder_without_a_saved_project_is_the_documented_one(provider, project, tmp_path):
    from ccexpert_changes import settings
    from qgis.core import QgsSettings

    assert settings.output_folder(project).endswith(os.sep + "CCExpert changes")
    QgsSettings().setValue(settings.KEY_OUTPUT_FOLDER, str(tmp_path / "results"))
    try:
        assert os.path.dirname(_algorithm().parameterDefinition("OUTPUT").defaultValue()) == str(tmp_path / "results")
    finally:
        QgsSettings().remove(settings.KEY_OUTPUT_FOLDER)


def test_each_loaded_result_gets_its_own_layer_name(provider, project, tmp_path):
    """QGIS first names a loaded file output after its table ("change_captions", Processing's "prefer filename
    as layer name"), then runs the post-processor, which gives each run's layer its own name."""
    from ccexpert_changes import run_feedback
    from qgis.core import QgsProcessingContext

    context = QgsProcessingContext()
    context.setProject(project)
    names = []
    for i in range(3):
        output = str(tmp_path / f"run{i}.gpkg")
        context.addLayerToLoadOnCompletion(output, QgsProcessingContext.LayerDetails("x", project, "OUTPUT"))
        run_feedback.style_on_load(context, output, "/data/2021/chip_2.tif")
        details = context.layerToLoadOnCompletionDetails(output)
        layer = QgsVectorLayer("Polygon?crs=EPSG:32615&field=caption:string", "change_captions", "memory")
        project.addMapLayer(layer)  # as Processing's handleAlgorithmResults does, then the post-processor
        details.postProcessor().postProcessLayer(layer, context, QgsProcessingFeedback())
        names.append(layer.name())
    assert names[0].startswith("Change captions – chip_2.tif ")
    assert len(set(names)) == 3 and names[1] == names[0] + " (2)" and names[2] == names[0] + " (3)"


def test_the_result_becomes_the_active_layer_so_map_tips_show(provider, project, qgis_iface, tmp_path):
    from ccexpert_changes.layer_style import ChangeLayerPostProcessor

    other = QgsVectorLayer("Point?crs=EPSG:32615", "other", "memory")
    result = QgsVectorLayer("Polygon?crs=EPSG:32615&field=caption:string&field=status:string", "result", "memory")
    project.addMapLayers([other, result])
    qgis_iface.setActiveLayer(other)
    context = QgsProcessingContext()
    context.setProject(project)
    ChangeLayerPostProcessor().postProcessLayer(result, context, QgsProcessingFeedback())
    assert qgis_iface.activeLayer() is result
    assert result.mapTipTemplate()


class _Bar:
    def __init__(self):
        self.messages = []

    def pushMessage(self, title, text, *args, level=None, duration=None):  # QGIS API name
        more = args[0] if args else None
        level = args[1] if len(args) > 1 else level
        self.messages.append({"title": title, "text": text, "more": more, "level": level})


def test_message_bar_one_short_line_keeps_the_counts_with_the_warnings_under_more(qgis_app):
    from ccexpert_changes.dialog import DEMO_WARNING, push_summary
    from qgis.core import Qgis

    bar = _Bar()
    note = "The model was trained on about 0.5 m per pixel; these chips give it 2 m per pixel."
    push_summary(bar, {"CAPTIONED": 25, "CHANGED": 8, "ERRORS": 0, "SKIPPED_NODATA": 11, "DEMO": 1}, [note])
    (message,) = bar.messages  # one message: a second one would cover the counts
    assert message["text"] == "25 captioned, 8 changed, 0 errors, 11 skipped (nodata)"
    assert message["title"] == "CCExpert (demo model, pixel size off)"
    assert len(message["title"] + message["text"]) < 100  # does not wrap beside "Show more" at 1100 px
    assert DEMO_WARNING in message["more"] and note in message["more"]
    assert message["level"] == Qgis.MessageLevel.Warning
    bar = _Bar()
    push_summary(bar, {"CAPTIONED": 1, "CHANGED": 0, "ERRORS": 0, "SKIPPED_NODATA": 0, "DEMO": 0})
    assert bar.messages[0]["text"] == "1 captioned, 0 changed, 0 errors, 0 skipped (nodata)"
    assert bar.messages[0]["title"] == "CCExpert"
    assert bar.messages[0]["level"] == Qgis.MessageLevel.Success and bar.messages[0]["more"] is None
    bar = _Bar()
    push_summary(bar, {"CAPTIONED": 3, "CHANGED": 1, "ERRORS": 1, "SKIPPED_NODATA": 0, "DEMO": 0})
    assert len(bar.messages) == 1 and bar.messages[0]["level"] == Qgis.MessageLevel.Warning


def test_no_1_chips_in_gui_text(qgis_app):
    from ccexpert_changes.dialog import chips_text, confirmation_text

    assert chips_text(1) == "1 chip" and chips_text(2) == "2 chips"
    assert confirmation_text(1, 0).startswith("This run will send 1 chip to the backend")


def test_same_raster_and_no_overlap_refused_before_the_backend_is_asked(provider, tmp_path):
    import stub_backend

    before, after = pair(tmp_path, h=400, w=400)
    far = write_tif(tmp_path / "far.tif", textured(64, 64), (ORIGIN[0] + 1e6, 0.5, 0, ORIGIN[1], 0, -0.5))
    with stub_backend.failing_backend() as (url, _hits):
        asked_before = sum(n for path, n in stub_backend.HITS.items() if path.startswith("/failing"))
        alg = _algorithm()
        context = QgsProcessingContext()
        base = {"BACKEND_URL": url, "OUTPUT": str(tmp_path / "o.gpkg")}
        ok, message = alg.checkParameterValues({**base, "BEFORE": str(before), "AFTER": str(before)}, context)
        assert not ok and "Before and After are the same raster" in message
        ok, message = alg.checkParameterValues({**base, "BEFORE": str(before), "AFTER": str(far)}, context)
        assert not ok and "do not overlap" in message
        ok, message = alg.checkParameterValues({**base, "BEFORE": str(before), "AFTER": str(after)}, context)
        assert ok, message
        asked = sum(n for path, n in stub_backend.HITS.items() if path.startswith("/failing"))
        assert asked == asked_before  # nothing was asked (HITS is shared with other tests of the session)
    assert not (tmp_path / "o.gpkg").exists()


def test_ccexpert_warnings_in_the_message_log_become_the_last_error_without_secrets(qgis_app):
    from ccexpert_changes import diagnostics
    from qgis.core import Qgis, QgsApplication, QgsMessageLog

    diagnostics.watch_log()
    try:
        QgsMessageLog.logMessage("all fine", "CCExpert", Qgis.MessageLevel.Info)
        QgsMessageLog.logMessage("other plugin failed", "Other", Qgis.MessageLevel.Critical)
        QgsMessageLog.logMessage("run abc: 2 errors; Bearer s3cr3t-key", "CCExpert", Qgis.MessageLevel.Warning)
        QgsApplication.processEvents()
        assert diagnostics.last_error().endswith("run abc: 2 errors; Bearer ***")
    finally:
        diagnostics.unwatch_log()
    QgsMessageLog.logMessage("after unload", "CCExpert", Qgis.MessageLevel.Critical)
    QgsApplication.processEvents()
    assert "after unload" not in diagnostics.last_error()


def test_a_run_at_a_pixel_size_far_from_the_models_keeps_the_warning_in_the_abstract(run_describe, backend, tmp_path):
    """Issue 25.5: the warning was only in the log; whoever opens the layer later reads it in the abstract."""
    from ccexpert_changes.core.layer_metadata import read_abstract

    if not backend.info.get("gsd_m"):
        pytest.skip("the test backend's model card names no gsd_m")
    before, after = pair(tmp_path, h=384, w=384, pixel=2.0, changes=())
    out = tmp_path / "coarse.gpkg"
    _, feedback = run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out)})
    _, abstract = read_abstract(out, "change_captions")
    assert "Warning: The model was trained on about 0.5 m per pixel" in abstract
    assert "about 96 px matches the model" in abstract
    fine_before, fine_after = pair(tmp_path, h=384, w=384, pixel=0.5, changes=(), name="fine")
    fine = tmp_path / "fine.gpkg"
    run_describe({"BEFORE": str(fine_before), "AFTER": str(fine_after), "OUTPUT": str(fine)})
    assert "Warning" not in read_abstract(fine, "change_captions")[1]
