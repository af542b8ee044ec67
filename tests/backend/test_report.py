"""``ccexpert report``: a self-contained HTML page of a describe output."""

from __future__ import annotations

import re
import shutil

import numpy as np
from ccexpert.cli import main
from ccexpert.describe import DescribeOptions, EngineCaptioner, describe
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, blocks, write_tif


def make_output(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before_data = blocks(1000)
    after_data = before_data.copy()
    after_data[:, :384, 384:768] += 5  # chip (0, 1) changed
    after_data[:, 384:768, :384] = 0  # chip (1, 0): nodata in the after date
    before = write_tif(tmp_path / "b.tif", before_data, transform)
    after = write_tif(tmp_path / "a.tif", after_data, transform, nodata=0)
    out = tmp_path / "o.gpkg"
    describe(DescribeOptions(str(before), str(after), str(out), progress=False), EngineCaptioner(EchoEngine()))
    return before, after, out


def test_report_has_map_thumbnails_and_captions_of_changed_tiles(tmp_path, capsys):
    _, _, out = make_output(tmp_path)
    html_path = tmp_path / "report.html"
    assert main(["report", str(out), "-o", str(html_path)]) == 0
    assert "9 tiles, 1 changed (1 shown)" in capsys.readouterr().out
    page = html_path.read_text()
    assert page.count("<rect ") == 9  # every tile on the overview map
    assert page.count('fill="#e4572e"') == 1 and page.count('fill="#b0b0b0"') == 2  # changed; nodata (+corner)
    card = re.search(r'<section class="card" id="(r00000_c00001_[0-9a-f]{8})">(.*?)</section>', page, re.S)
    assert card, "no card for the changed tile"
    assert f'href="#{card.group(1)}"' in page  # the map links to it
    assert "before 20 after 25" in card.group(2)
    thumbs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', card.group(2))
    assert len(thumbs) == 2  # self-contained: images inlined
    import base64
    import io

    from PIL import Image

    before_thumb = np.asarray(Image.open(io.BytesIO(base64.b64decode(thumbs[0]))))
    assert before_thumb.shape == (192, 192, 3) and int(before_thumb.mean()) == 20
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere


def test_report_without_rasters_still_lists_captions(tmp_path, capsys):
    before, after, out = make_output(tmp_path)
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(before, moved / "b.tif")
    html_path = tmp_path / "r.html"
    assert main(["report", str(out), "-o", str(html_path)]) == 0
    page = html_path.read_text()
    assert "thumbnails unavailable" in page and "before 20 after 25" in page and "data:image/png" not in page
    # pointing at the moved raster brings the thumbnails back; a wrong raster is detected by the grid hash
    assert main(["report", str(out), "-o", str(html_path), "--before", str(moved / "b.tif")]) == 0
    assert "data:image/png" in html_path.read_text()
    other = write_tif(tmp_path / "other.tif", blocks(1000), from_origin(ORIGIN[0] + 7, ORIGIN[1], 0.5, 0.5))
    assert main(["report", str(out), "-o", str(html_path), "--before", str(other)]) == 0
    assert "grid hash differs" in html_path.read_text()


def test_report_refuses_a_file_that_is_not_a_describe_output(tmp_path, capsys):
    bogus = tmp_path / "x.gpkg"
    bogus.write_bytes(b"not a geopackage")
    assert main(["report", str(bogus), "-o", str(tmp_path / "r.html")]) == 2
    assert "ccexpert report:" in capsys.readouterr().err
