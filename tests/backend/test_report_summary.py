"""The report's summary by kind of change and its filters over the cards (issue 27)."""

from __future__ import annotations

import re

import numpy as np
from ccexpert.describe import DescribeOptions, EngineCaptioner, describe
from ccexpert.nochange import is_no_change
from ccexpert.report import build_report
from ccexpert.report_summary import summary_table
from ccexpert_changes.core.fact_fields import tile_fields
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, EchoResult, blocks, write_tif

BY_COLUMN = ["two houses are demolished", "many trees are removed", "the scene is the same as before"]


class ByColumnEngine(EchoEngine):
    """Caption by the chip's position in its batch of three (one batch per row): column 0, 1, 2."""

    def caption(self, pairs, max_new_tokens: int = 64):
        super().caption(pairs, max_new_tokens)
        return [EchoResult(c, 0.9, not is_no_change(c), 5) for c in BY_COLUMN[: len(pairs)]]


def test_summary_table_and_kind_filters_in_the_report(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    data = blocks(1152)
    before = write_tif(tmp_path / "b.tif", data, transform)
    after = write_tif(tmp_path / "a.tif", np.clip(data.astype(int) + 4, 0, 255).astype(data.dtype), transform)
    out = tmp_path / "o.gpkg"
    options = DescribeOptions(str(before), str(after), str(out), batch_size=3, in_flight=1, progress=False)
    describe(options, EngineCaptioner(ByColumnEngine()))
    build_report(out, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    table = page[page.index('<table class="summary">') : page.index("</table>")]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", table)
    # three rows of chips: column 0 says two houses each (one area of 3 tiles: 6 objects), column 1 "many trees"
    assert rows == [("buildings disappeared", "3", "6", "33.3%"), ("vegetation lost", "3", "not counted", "33.3%")]
    assert page.index('<table class="summary">') < page.index("<h2>Overview</h2>")  # at the top
    # filters: one radio per kind, and the cards carry their kind
    assert 'id="kind-0"> buildings disappeared' in page and 'id="kind-1"> vegetation lost' in page
    assert page.count('<h3 data-kind="buildings disappeared">') == 3
    assert 'body:has(#kind-0:checked) .card:not(:has(h3[data-kind="buildings disappeared"])){display:none}' in page


def test_no_summary_without_changed_tiles():
    tile = {"status": "ok", "changed": 0, "bounds": (0, 0, 1, 1), "row": 0, "col": 0, "tile_id": "t"}
    tile.update(tile_fields("there is no difference", False))
    assert summary_table([tile]) == ""
