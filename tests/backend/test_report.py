"""``ccexpert report``: a self-contained HTML page of a describe output."""

from __future__ import annotations

import itertools
import re
import shutil

import numpy as np
import pytest
from ccexpert.cli import main
from ccexpert.describe import DescribeOptions, EngineCaptioner, describe
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, blocks, write_tif


class SureEcho(EchoEngine):
    """Echo captions, and the same confidence for every pair (as a model sure of everything gives)."""

    def caption(self, pairs, max_new_tokens: int = 64):
        return [type(r)(r.caption, 0.97, r.changed, r.num_tokens) for r in super().caption(pairs, max_new_tokens)]


def make_output(tmp_path, engine=None, size=1152):
    tmp_path.mkdir(parents=True, exist_ok=True)
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before_data = blocks(size)
    after_data = before_data.copy()
    after_data[:, :384, 384:768] += 5  # chip (0, 1) changed
    after_data[:, 384:768, :384] = 0  # chip (1, 0): nodata in the after date
    before = write_tif(tmp_path / "b.tif", before_data, transform)
    after = write_tif(tmp_path / "a.tif", after_data, transform, nodata=0)
    out = tmp_path / "o.gpkg"
    describe(
        DescribeOptions(str(before), str(after), str(out), progress=False), EngineCaptioner(engine or EchoEngine())
    )
    return before, after, out


def _images(html_text: str) -> list[np.ndarray]:
    import base64
    import io

    from PIL import Image

    found = re.findall(r'src="data:image/(?:png|jpeg);base64,([A-Za-z0-9+/=]+)"', html_text)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b)))) for b in found]


def test_report_has_map_imagery_and_captions_of_changed_tiles(tmp_path, capsys):
    _, _, out = make_output(tmp_path)
    html_path = tmp_path / "report.html"
    assert main(["report", str(out), "-o", str(html_path)]) == 0
    assert "9 tiles, 1 changed (1 shown)" in capsys.readouterr().out
    page = html_path.read_text()
    assert page.count('class="tile ') == 9  # every tile on the overview map
    assert page.count('class="tile changed"') == 1 and page.count('class="tile skipped_nodata"') == 1
    card = re.search(r'<section class="card" id="(r00000_c00001_[0-9a-f]{8})">(.*?)</section>', page, re.S)
    assert card, "no card for the changed tile"
    assert "Row 1, column 2" in card.group(2)  # titled by row and column (1-based), the id only as a detail
    assert f'href="#{card.group(1)}"' in page  # the map links to it
    assert "before 20 after 25" in card.group(2)
    after_img, before_img = _images(card.group(2))[:2]
    assert before_img.shape == (384, 384, 3) and abs(float(before_img.mean()) - 20) < 1.5  # the chip's own pixels
    assert abs(float(after_img.mean()) - 25) < 1.5
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere
    # the layer's abstract says which model made the captions; the echo engine calls itself a demo: a warning
    assert re.search(r'<p class="warn">Made with the DEMO model echo', page)


def test_overview_is_drawn_over_the_imagery_with_scale_and_coordinates(tmp_path):
    from ccexpert.report import MAP_WIDTH, build_report

    _, _, out = make_output(tmp_path, size=1000)
    build_report(out, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    svg = page[page.index('<svg class="map"') : page.index("</svg>")]
    assert svg.count('<image class="img-before"') == 1 and svg.count('<image class="img-after"') == 1
    mosaic_before = _images(svg.replace("href=", "src="))[0]
    assert mosaic_before.shape[1] == MAP_WIDTH and 15 < float(mosaic_before.mean()) < 120
    assert re.search(r'<g class="scalebar">.*?>(100|200) m</text>', svg)
    assert "Extent x 399000.0 – 399500.0, y 5699500.0 – 5700000.0 (EPSG:32633)" in page
    # the 1000 px raster has 3 x 3 chips of 384 px: the last column and row end at the raster's edge, none beyond
    tiles = [
        (float(x), float(w))
        for x, w in re.findall(
            r'class="tile [a-z_]+" x="([0-9.]+)" y="[0-9.]+" '
            r'width="([0-9.]+)"',
            svg,
        )
    ]
    assert len(tiles) == 9 and max(x + w for x, w in tiles) == pytest.approx(MAP_WIDTH, abs=0.05)
    # each tile is drawn as the part it owns (issue 25.7): chips at 0, 384 and 616 px, the overlap of the last two
    # split at 692 px, so the columns are 384, 308 and 308 px wide and meet edge to edge
    columns = sorted({(round(x, 1), round(w, 1)) for x, w in tiles})
    assert [w for _, w in columns] == [round(MAP_WIDTH * n / 1000, 1) for n in (384, 308, 308)]
    assert all(abs(x0 + w0 - x1) < 0.05 for (x0, w0), (x1, _) in itertools.pairwise(columns))


def test_confidence_is_shown_only_where_it_tells_tiles_apart(tmp_path):
    from ccexpert.report import build_report

    _, _, out = make_output(tmp_path / "echo")  # echo confidences differ from tile to tile
    build_report(out, tmp_path / "r.html")
    assert "confidence 0." in (tmp_path / "r.html").read_text()
    _, _, out = make_output(tmp_path / "sure", SureEcho())
    build_report(out, tmp_path / "same.html")
    page = (tmp_path / "same.html").read_text()
    assert "confidence 0." not in page and "Confidence is 0.97–0.97 on every captioned tile" in page


def test_difference_outline_marks_a_local_change_and_ignores_a_global_one():
    from ccexpert.report import difference_outline

    rng = np.random.default_rng(0)
    before = (rng.normal(120, 12, (384, 384, 3))).clip(0, 255).astype(np.uint8)
    brighter = (before.astype(int) + 40).clip(0, 255).astype(np.uint8)  # new light, nothing else
    assert difference_outline(before, brighter) is None
    after = before.copy()
    after[100:160, 200:280] = (230, 225, 220)  # a new roof
    overlay = np.asarray(difference_outline(before, after))
    alpha = overlay[..., 3] > 0
    assert alpha[90:170, 190:290].any() and not alpha[:60].any() and not alpha[250:].any()


def test_report_without_rasters_still_lists_captions(tmp_path, capsys):
    before, after, out = make_output(tmp_path)
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(before, moved / "b.tif")
    html_path = tmp_path / "r.html"
    assert main(["report", str(out), "-o", str(html_path)]) == 0
    page = html_path.read_text()
    assert "imagery unavailable" in page and "before 20 after 25" in page and "data:image/" not in page
    # pointing at the moved raster brings the thumbnails back; a wrong raster is detected by the grid hash
    assert main(["report", str(out), "-o", str(html_path), "--before", str(moved / "b.tif")]) == 0
    assert "data:image/jpeg" in html_path.read_text()
    other = write_tif(tmp_path / "other.tif", blocks(1000), from_origin(ORIGIN[0] + 7, ORIGIN[1], 0.5, 0.5))
    assert main(["report", str(out), "-o", str(html_path), "--before", str(other)]) == 0
    assert "grid hash differs" in html_path.read_text()


def test_report_refuses_a_file_that_is_not_a_describe_output(tmp_path, capsys):
    bogus = tmp_path / "x.gpkg"
    bogus.write_bytes(b"not a geopackage")
    assert main(["report", str(bogus), "-o", str(tmp_path / "r.html")]) == 2
    assert "ccexpert report:" in capsys.readouterr().err
