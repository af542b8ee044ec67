"""``ccexpert describe --areas``: layer change_areas dissolves neighbouring changed tiles of one kind, across
overlapping chips, and counts their objects once."""

from __future__ import annotations

import fiona
import pytest
from ccexpert.area_layer import write_change_areas
from ccexpert.cli import main
from ccexpert.gpkg_output import read_tiles
from ccexpert_changes.core.areas import AREAS_LAYER_NAME
from ccexpert_changes.core.style_table import default_style
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, EchoResult, blocks, write_tif
from shapely.geometry import box, shape
from shapely.ops import unary_union


class OneCaptionEngine(EchoEngine):
    """Every chip: two houses built on its right side (a caption the area's count must not double)."""

    def caption(self, pairs, max_new_tokens: int = 64):
        super().caption(pairs, max_new_tokens)
        return [EchoResult("two houses are built on the right side", 0.5, True, 8) for _ in pairs]


def test_describe_areas_dissolves_overlapping_chips_into_one_area(tmp_path, monkeypatch, capsys):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "before.tif", blocks(704), transform)
    after = write_tif(tmp_path / "after.tif", blocks(704) + 3, transform)
    out = tmp_path / "o.gpkg"
    from ccexpert import engine

    monkeypatch.setattr(engine.CaptionEngine, "from_pretrained", classmethod(lambda cls, *a, **k: OneCaptionEngine()))
    argv = ["describe", str(before), str(after), "-o", str(out), "--overlap", "64", "--areas", "-q"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "1 change areas" in capsys.readouterr().out
    tiles, _ = read_tiles(out)
    assert len(tiles) == 4  # 704 px, chips of 384 at a stride of 320: 2 x 2, overlapping by 64
    with fiona.open(out, layer=AREAS_LAYER_NAME) as layer:
        (feature,) = list(layer)
    props = feature.properties
    assert props["change_kind"] == "buildings appeared" and props["n_tiles"] == 4
    # each chip says "two houses on the right side": only the left column's chips face no earlier neighbour on
    # that side, the right column's right side is outside every overlap, so nothing is skipped: 4 x 2
    assert props["n_objects"] == 8
    union = unary_union([box(*t["bounds"]) for t in tiles])
    assert shape(feature.geometry).equals(union) and union.geom_type == "Polygon"  # one outline, no seams
    assert "Buildings appeared" in (default_style(out, AREAS_LAYER_NAME) or "")  # opens styled by kind


def test_rewritten_from_all_tiles_and_objects_on_a_shared_side_counted_once(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "before.tif", blocks(704), transform)
    after = write_tif(tmp_path / "after.tif", blocks(704) + 3, transform)
    out = tmp_path / "o.gpkg"
    from ccexpert.describe import DescribeOptions, EngineCaptioner, describe

    class LeftSide(EchoEngine):
        def caption(self, pairs, max_new_tokens: int = 64):
            super().caption(pairs, max_new_tokens)
            return [EchoResult("two houses are built on the left side", 0.5, True, 8) for _ in pairs]

    summary = describe(
        DescribeOptions(str(before), str(after), str(out), overlap=64, progress=False), EngineCaptioner(LeftSide())
    )
    # the polygons are the parts each tile owns (they do not overlap): the chips' overlap comes from the run's grid
    assert write_change_areas(out, summary.grid) == 1
    assert write_change_areas(out, summary.grid) == 1  # a second write replaces the layer, it does not append
    with fiona.open(out, layer=AREAS_LAYER_NAME) as layer:
        (feature,) = list(layer)
    # the right column's "two houses on the left side" lie in the strip it shares with the left column: not counted
    assert feature.properties["n_objects"] == 4


def test_describe_without_areas_writes_no_area_layer(tmp_path):
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    before = write_tif(tmp_path / "before.tif", blocks(384), transform)
    after = write_tif(tmp_path / "after.tif", blocks(384) + 3, transform)
    out = tmp_path / "o.gpkg"
    from ccexpert.describe import DescribeOptions, EngineCaptioner, describe

    describe(DescribeOptions(str(before), str(after), str(out), progress=False), EngineCaptioner(OneCaptionEngine()))
    assert AREAS_LAYER_NAME not in fiona.listlayers(out)
    with pytest.raises(ValueError, match="not a describe output"):
        write_change_areas(tmp_path / "missing.gpkg")
