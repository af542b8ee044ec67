"""The report's dates, area-of-interest outline and table of all tiles (issue 25, finding 13)."""

from __future__ import annotations

import re

import fiona
import numpy as np
import rasterio
from ccexpert.describe import DescribeOptions, EngineCaptioner, describe
from ccexpert.gpkg_output import read_metadata
from ccexpert.report import MAP_WIDTH, build_report
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, blocks, write_tif
from shapely.geometry import box, mapping

X0, Y0 = ORIGIN


def scene(tmp_path, aoi: str | None = None):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before_data = blocks(1152)
    after_data = before_data.copy()
    after_data[:, :384, 384:768] += 5  # grid chip (0, 1): row 1, column 2 for people
    after_data[:, 384:768, :384] = 0  # grid chip (1, 0): nodata in the after date
    before = write_tif(tmp_path / "before.tif", before_data, transform)
    with rasterio.open(before, "r+") as dst:
        dst.update_tags(TIFFTAG_DATETIME="2019:05:01 10:00:00")
    after = write_tif(tmp_path / "after_2021-06-30.tif", after_data, transform, nodata=0)
    out = tmp_path / "o.gpkg"
    describe(DescribeOptions(str(before), str(after), str(out), progress=False, aoi=aoi), EngineCaptioner(EchoEngine()))
    return out


def test_dates_of_both_rasters_and_of_the_run(tmp_path):
    out = scene(tmp_path)
    build_report(out, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    dates = page[page.index('<ul class="dates">') : page.index("</ul>")]
    assert re.search(r"Before: <b>2019-05-01 <small>\(from the TIFFTAG_DATETIME\)</small></b> · \S+before\.tif", dates)
    assert re.search(r"After: <b>2021-06-30 <small>\(from the file name\)</small></b>", dates)
    assert re.search(r"Captioned \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ – \d{4}-", page)


def test_a_raster_without_a_date_says_so(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "b.tif", blocks(768), transform)
    after = write_tif(tmp_path / "a.tif", blocks(768) + 1, transform)
    out = tmp_path / "o.gpkg"
    describe(DescribeOptions(str(before), str(after), str(out), progress=False), EngineCaptioner(EchoEngine()))
    build_report(out, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert page.count("date unknown") == 2 and '<path class="aoi"' not in page  # and no AOI: no outline


def test_the_area_of_interest_is_outlined_on_the_overview(tmp_path):
    aoi_file = tmp_path / "aoi.gpkg"
    # a box over the left two thirds and the top two thirds of the 576 m scene
    aoi = box(X0 + 10, Y0 - 380, X0 + 380, Y0 - 10)
    with fiona.open(
        aoi_file, "w", driver="GPKG", crs="EPSG:32633", schema={"geometry": "Polygon", "properties": {}}
    ) as dst:
        dst.write({"geometry": mapping(aoi), "properties": {}})
    out = scene(tmp_path, aoi=str(aoi_file))
    assert "POLYGON" in read_metadata(out)["aoi"]  # the run stores the area it described
    build_report(out, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    svg = page[page.index('<svg class="map"') : page.index("</svg>")]
    path = re.search(r'<path class="aoi" d="([^"]+)"', svg)
    assert path and "area of interest" in page
    xs_ys = np.array([float(v) for v in re.findall(r"-?\d+\.\d", path.group(1))]).reshape(-1, 2)
    # the overview shows the 4 chips touched (768 px = 384 m); the AOI starts 10 m in and ends at 380 m
    scale = MAP_WIDTH / 384
    assert xs_ys[:, 0].min() == np.float64(round(10 * scale, 1)) and xs_ys[:, 0].max() == round(380 * scale, 1)
    assert xs_ys[:, 1].min() == round(10 * scale, 1) and xs_ys[:, 1].max() == round(380 * scale, 1)


def test_every_tile_is_in_the_table_with_one_based_places(tmp_path):
    out = scene(tmp_path)
    build_report(out, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    start = page.index('<table class="tiles">')
    table = page[start : page.index("</table>", start)]  # the summary by kind is a table too, above this one
    rows = re.findall(r'<tr class="([a-z_]+)"><td>(\d+)</td><td>(\d+)</td><td>([^<]+)</td><td>(.*?)</td>', table)
    assert [(int(r), int(c)) for _, r, c, _, _ in rows] == [(r, c) for r in range(1, 4) for c in range(1, 4)]
    kinds = {(int(r), int(c)): (kind, label, text) for kind, r, c, label, text in rows}
    assert kinds[(1, 2)][:2] == ("changed", "changed") and 'href="#r00000_c00001_' in kinds[(1, 2)][2]
    assert kinds[(2, 1)][:2] == ("skipped_nodata", "skipped (nodata)")
    assert kinds[(1, 1)][0] == "unchanged" and "before 10 after 10" in kinds[(1, 1)][2]


def test_the_report_never_replaces_its_inputs(tmp_path, capsys):
    from ccexpert.cli import main

    out = scene(tmp_path)
    kept = out.read_bytes()
    assert main(["report", str(out), "-o", str(out)]) == 2
    assert "would replace the GeoPackage" in capsys.readouterr().err and out.read_bytes() == kept
    before = tmp_path / "before.tif"
    raster = before.read_bytes()
    assert main(["report", str(out), "-o", str(before)]) == 2
    assert "would replace a raster" in capsys.readouterr().err and before.read_bytes() == raster
    assert main(["report", str(out), "-o", str(tmp_path / "r.html")]) == 0
    assert not list(tmp_path.glob("*.partial"))  # written whole, then moved into place
