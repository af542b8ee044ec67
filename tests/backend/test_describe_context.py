"""``ccexpert describe --context`` (issue 27 item 7): the note is checked before anything is written (exit 2), reaches
the model in process and through a backend, is stored in the run metadata (not compared on resume) and the report
shows it under its title."""

from __future__ import annotations

import pytest
from ccexpert.cli import main
from ccexpert.client import CCExpertClient
from ccexpert.describe import DescribeOptions, EngineCaptioner, ServiceCaptioner, describe
from ccexpert.gpkg_output import read_metadata
from ccexpert.service import Settings, create_app
from rasterio.transform import from_origin
from service_helpers import ORIGIN, NoteEngine, blocks, thread_server, write_tif

NOTE = "after the May 2011 tornado"


@pytest.fixture
def rasters(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    data = blocks(768)
    changed = data.copy()
    changed[:, :384, 384:] += 5
    return write_tif(tmp_path / "b.tif", data, transform), write_tif(tmp_path / "a.tif", changed, transform)


def _run(rasters, out, captioner, **kwargs):
    before, after = rasters
    return describe(DescribeOptions(str(before), str(after), str(out), progress=False, **kwargs), captioner)


@pytest.mark.parametrize(
    ("note", "says"),
    [("x" * 301, "--context: context is 301 characters, over the limit of 300"), ("a\nb", "control character")],
)
def test_a_bad_note_is_exit_2_and_nothing_is_written(rasters, tmp_path, capsys, note, says):
    out = tmp_path / "o.gpkg"
    before, after = rasters
    assert main(["describe", str(before), str(after), "-o", str(out), "-q", "--context", note]) == 2
    assert says in capsys.readouterr().err and not out.exists()
    out.write_bytes(b"an analyst's file")  # --overwrite with a bad note: the old output is left as it was
    assert main(["describe", str(before), str(after), "-o", str(out), "-q", "--overwrite", "--context", note]) == 2
    assert out.read_bytes() == b"an analyst's file"


def test_the_note_reaches_the_model_and_the_run_metadata(rasters, tmp_path):
    engine = NoteEngine()
    out = tmp_path / "o.gpkg"
    summary = _run(rasters, out, EngineCaptioner(engine), context_note=f"  {NOTE} ")
    assert summary.counts["ok"] == 4 and engine.calls and all(note == NOTE for _, note in engine.calls)
    assert read_metadata(out)["context"] == NOTE


def test_without_a_note_the_metadata_has_none_and_the_model_gets_none(rasters, tmp_path):
    engine = NoteEngine()
    _run(rasters, tmp_path / "o.gpkg", EngineCaptioner(engine))
    assert "context" not in read_metadata(tmp_path / "o.gpkg") and {note for _, note in engine.calls} == {None}


def test_through_a_backend_the_note_is_in_every_request(rasters, tmp_path):
    engine = NoteEngine()
    with thread_server(create_app(Settings(max_batch=2, max_wait_ms=1), engine)) as url:
        start = len(engine.calls)  # the service's start-up caption came first, without a note
        summary = _run(rasters, tmp_path / "o.gpkg", ServiceCaptioner(CCExpertClient(url)), context_note=NOTE)
    calls = engine.calls[start:]
    assert summary.counts["ok"] == 4 and len(calls) >= 2 and all(note == NOTE for _, note in calls), calls


def test_a_resume_with_another_note_appends_and_keeps_the_first(rasters, tmp_path):
    """The note is not part of the fingerprint (docs/ARCHITECTURE.md): rewording it does not refuse a resume."""
    out = tmp_path / "o.gpkg"
    _run(rasters, out, EngineCaptioner(NoteEngine()), context_note="after the flood", max_chips=100)
    summary = _run(rasters, out, EngineCaptioner(NoteEngine()), context_note="after the fire", resume=True)
    assert summary.skipped_done == 4 and read_metadata(out)["context"] == "after the flood"


def test_the_report_shows_the_note_under_the_title(rasters, tmp_path):
    noted, plain = tmp_path / "noted.gpkg", tmp_path / "plain.gpkg"
    _run(rasters, noted, EngineCaptioner(NoteEngine()), context_note="after <b>the</b> tornado & hail")
    _run(rasters, plain, EngineCaptioner(NoteEngine()))
    assert main(["report", str(noted), "-o", str(tmp_path / "n.html")]) == 0
    assert main(["report", str(plain), "-o", str(tmp_path / "p.html")]) == 0
    page = (tmp_path / "n.html").read_text()
    line = '<p class="context">Context: after &lt;b&gt;the&lt;/b&gt; tornado &amp; hail</p>'
    assert line in page and page.index("</h1>") < page.index(line) < page.index("tiles:")
    assert 'class="context"' not in (tmp_path / "p.html").read_text()
