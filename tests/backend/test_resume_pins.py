"""A resume with another nodata value is refused end to end, naming what differs (issue 30): the nodata field was
once dropped from the fingerprint comparison and every test still passed."""

from __future__ import annotations

import pytest
from ccexpert.cli import main
from ccexpert.gpkg_output import read_tiles
from ccexpert.service import Settings, create_app
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, blocks, thread_server, write_tif


@pytest.fixture
def echo_backend():
    with thread_server(create_app(Settings(), EchoEngine())) as url:
        yield url


def test_resume_with_nodata_0_on_an_output_made_without_it_is_refused(tmp_path, capsys, echo_backend):
    """Broken copy: nodata left out of the compared fields; ``--resume --nodata 0`` appended (exit 0) and this
    test failed."""
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "b.tif", blocks(768), transform)
    after = write_tif(tmp_path / "a.tif", blocks(768) + 3, transform)
    out = tmp_path / "o.gpkg"
    args = ["describe", str(before), str(after), "-o", str(out), "-q", "--backend", echo_backend]
    assert main(args) == 0
    first, _ = read_tiles(out)
    capsys.readouterr()
    assert main([*args, "--resume", "--nodata", "0"]) == 2
    err = capsys.readouterr().err
    assert "nodata value: None then, 0.0 now" in err and "--force" in err
    assert "bands" not in err and "chip size" not in err  # only what differs is named
    assert read_tiles(out)[0] == first  # refused before touching anything
    assert main([*args, "--resume"]) == 0  # the same settings resume
