"""``ccexpert describe`` writes the change-fact fields (core.fact_fields) on every tile, keeps them on resume and
refuses to resume an output made by another caption-parser version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ccexpert.describe import DescribeOptions, EngineCaptioner, describe
from ccexpert.gpkg_output import read_tiles
from ccexpert.nochange import is_no_change
from ccexpert_changes.core import fields
from ccexpert_changes.core.fact_fields import tile_fields
from rasterio.transform import from_origin
from service_helpers import ORIGIN, EchoEngine, EchoResult, blocks, write_tif

CAPTIONS = [
    "two houses are demolished at the top",
    "the scene is the same as before",
    "the trees are replaced by a parking lot",
    "a road appears on the left side",
]


class CaptionsEngine(EchoEngine):
    """Answers LEVIR-CC style captions in turn, so every kind of fact reaches the layer."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def caption(self, pairs, max_new_tokens: int = 64):
        super().caption(pairs, max_new_tokens)
        out = []
        for _ in pairs:
            text = CAPTIONS[self.n % len(CAPTIONS)]
            self.n += 1
            out.append(EchoResult(text, 0.5, not is_no_change(text), 5))
        return out


class Crashing(EngineCaptioner):
    def __init__(self, engine, after_batches: int):
        super().__init__(engine)
        self.left = after_batches

    def caption(self, items):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().caption(items)


def scene(tmp_path: Path) -> tuple[Path, Path]:
    transform = from_origin(*ORIGIN, 0.5, 0.5)
    return (
        write_tif(tmp_path / "before.tif", blocks(1152), transform),
        write_tif(tmp_path / "after.tif", blocks(1152) + 3, transform),
    )


def test_fact_fields_on_every_tile_kept_on_resume_and_parser_version_checked(tmp_path, monkeypatch):
    before, after = scene(tmp_path)
    out = tmp_path / "o.gpkg"
    options = DescribeOptions(str(before), str(after), str(out), batch_size=2, progress=False)
    with pytest.raises(KeyboardInterrupt):
        describe(options, Crashing(CaptionsEngine(), after_batches=2))
    first, _ = read_tiles(out)
    assert len(first) == 4
    options.resume = True
    monkeypatch.setattr(fields, "PARSER_VERSION", "999")  # a later parser must not mix its fields into this layer
    with pytest.raises(ValueError, match="caption parser version"):
        describe(options, EngineCaptioner(CaptionsEngine()))
    monkeypatch.undo()
    describe(options, EngineCaptioner(CaptionsEngine()))
    tiles, _ = read_tiles(out)
    assert len(tiles) == 9
    kept = {t["tile_id"]: t for t in first}
    kinds = set()
    for tile in tiles:
        expected = tile_fields(tile["caption"], bool(tile["changed"]))
        assert {name: tile[name] for name in expected} == expected, tile["caption"]
        if tile["tile_id"] in kept:  # the resumed run left the first run's rows as they were
            assert tile == kept[tile["tile_id"]]
        kinds.add(tile["change_kind"])
    assert kinds == {"buildings disappeared", "no change", "parking lots appeared", "roads appeared"}
    demolished = next(t for t in tiles if t["caption"] == CAPTIONS[0])
    assert (demolished["objects"], demolished["actions"], demolished["n_objects"]) == ("building", "disappeared", 2)
    assert demolished["where"] == "top_left,top,top_right"
    assert json.loads(demolished["facts"])[0]["count"] == 2
