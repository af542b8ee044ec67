"""The CONTEXT parameter (issue 27 item 7): checked by the rule ``ccexpert describe --context`` and the API share,
before anything is written; sent with every caption request; stored in the run metadata."""

from __future__ import annotations

import json

import pytest
from conftest import RecordingFeedback
from osgeo import gdal
from plugin_rasters import pair
from qgis.core import QgsProcessingException

NOTE = "after the May 2011 tornado"


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return pair(tmp_path_factory.mktemp("scene"), h=500, w=800, pixel=0.5, changes=((60, 60, 300, 300),))


def _run(scene, out, url, **extra):
    import processing

    before, after = scene
    params = {"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(out), "BACKEND_URL": url, **extra}
    return processing.run("ccexpert:describe_changes", params, feedback=RecordingFeedback.make())


def _captions_sent(seen: list[dict]) -> list[dict]:
    return [r for r in seen if r["path"].endswith("/v1/captions")]


@pytest.mark.parametrize(
    ("note", "says"),
    [("x" * 301, "Context note: context is 301 characters, over the limit of 300"), ("a\nb", "control character")],
)
def test_a_bad_note_is_refused_before_anything_is_sent_or_written(provider, scene, tmp_path, note, says):
    from stub_backend import SEEN, thread_stub

    out = tmp_path / "o.gpkg"
    with thread_stub() as url:
        sent = len(_captions_sent(SEEN))
        with pytest.raises(QgsProcessingException, match=says):
            _run(scene, out, url + "/ok", CONTEXT=note)
    assert not out.exists() and len(_captions_sent(SEEN)) == sent


def test_the_note_is_sent_with_every_request_and_stored_with_the_run(provider, scene, tmp_path):
    from stub_backend import SEEN, thread_stub

    out = tmp_path / "o.gpkg"
    with thread_stub() as url:
        start = len(SEEN)
        _run(scene, out, url + "/ok", CONTEXT=f"  {NOTE} ")
        requests = _captions_sent(SEEN[start:])
        plain = tmp_path / "plain.gpkg"
        middle = len(SEEN)
        _run(scene, plain, url + "/ok")
        without = _captions_sent(SEEN[middle:])
    assert requests and all(r["context"] == NOTE for r in requests), requests
    assert without and all("context" not in r["fields"] for r in without)
    assert _metadata(out)["context"] == NOTE and "context" not in _metadata(plain)


def _metadata(path) -> dict:
    ds = gdal.OpenEx(str(path))  # held while its layer is read (GDAL frees the layer with the dataset)
    return json.loads(ds.GetLayerByName("change_captions").GetMetadataItem("ccexpert_describe"))
