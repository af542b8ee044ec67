"""Synthetic benchmark: deterministic by seed, records in the contract format, captions that pass the gates,
unchanged pairs that still differ in raw pixels, and georeferenced GeoTIFF scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from ccexpert_training.maskcaption.facts import ChangeFacts, extract_facts
from ccexpert_training.maskcaption.gates import check_caption
from ccexpert_training.synth import make_pair, make_scene_pair, write_benchmark


def test_pair_is_deterministic_and_independent_of_n():
    a, b = make_pair(5, 3), make_pair(5, 3)
    assert np.array_equal(a.before, b.before) and np.array_equal(a.after, b.after)
    assert np.array_equal(a.mask, b.mask) and a.captions == b.captions
    c = make_pair(6, 3)
    assert not np.array_equal(a.before, c.before)


def test_pairs_shapes_captions_and_gates():
    changed = 0
    for index in range(24):
        pair = make_pair(1, index)
        assert pair.before.shape == pair.after.shape == (256, 256, 3)
        assert pair.before.dtype == np.uint8 and pair.mask.shape == (256, 256)
        assert len(pair.captions) == 5 and len(set(pair.captions)) == 5
        # the facts are what the mask says, and every caption agrees with them
        assert pair.facts.changed == bool(pair.mask.any())
        for caption in pair.captions:
            assert check_caption(caption, pair.facts).passed, (caption, check_caption(caption, pair.facts).reasons)
        changed += pair.facts.changed
    assert 6 <= changed <= 18  # about half


def test_semantic_mask_classes_match_the_facts():
    pair = next(p for p in (make_pair(2, i, changed=True) for i in range(10)) if len(p.facts.facts) == 1)
    facts = extract_facts(pair.mask)  # class read from the mask values alone
    assert {f.cls for f in facts.facts} == {f.cls for f in pair.facts.facts}


def test_unchanged_pairs_differ_in_pixels_but_not_in_facts():
    pair = make_pair(3, 0, changed=False)
    assert not pair.facts.changed and not pair.mask.any()
    difference = np.abs(pair.before.astype(int) - pair.after.astype(int)).mean()
    assert difference > 3.0  # illumination, season, noise: raw differences are everywhere


def test_forced_change_has_facts():
    for index in range(5):
        assert make_pair(4, index, changed=True).facts.changed


def test_two_change_share_changes_only_how_many_events():
    """Over-sampling two-change pairs (the demo's training data) keeps each pair's random stream: the pairs drawn with
    one change at the benchmark's share are the same pairs at a higher share, and the share is what was asked."""
    base = [make_pair(8, i, changed=True) for i in range(40)]
    more = [make_pair(8, i, changed=True, two_changes=0.6) for i in range(40)]
    assert sum(len(p.events) == 2 for p in base) < sum(len(p.events) == 2 for p in more)
    assert 14 <= sum(len(p.events) == 2 for p in more) <= 34
    same = [i for i, (a, b) in enumerate(zip(base, more, strict=True)) if len(b.events) == 1]
    assert same and all(np.array_equal(base[i].before, more[i].before) for i in same)
    assert all(base[i].captions == more[i].captions for i in same)
    assert all(len(p.events) == 2 for p in (make_pair(8, i, changed=True, two_changes=1.0) for i in range(6)))
    with pytest.raises(ValueError, match="two_changes must be a share in"):
        make_pair(8, 0, two_changes=1.5)


def test_write_benchmark_splits_and_records(tmp_path):
    paths = write_benchmark(tmp_path / "a", n=20, seed=7)
    again = write_benchmark(tmp_path / "b", n=20, seed=7, workers=2)  # same bytes from worker processes
    counts = {}
    for split, path in paths.items():
        lines = path.read_text().splitlines()
        counts[split] = len(lines)
        assert lines == again[split].read_text().splitlines()
        for line in lines:
            record = json.loads(line)
            assert set(record) == {"uid", "before", "after", "captions", "changed", "mask"}
            for key in ("before", "after", "mask"):
                assert (path.parent / record[key]).is_file()
            assert len(record["captions"]) == 5
    assert counts == {"train": 16, "val": 2, "test": 2}
    assert (tmp_path / "a" / "images" / "A").is_dir()
    # facts.jsonl holds what the captions were written from
    facts = [json.loads(line) for line in (tmp_path / "a" / "facts.jsonl").read_text().splitlines()]
    assert len(facts) == 20 and all(ChangeFacts.from_dict(f).changed == f["changed"] for f in facts)
    with (
        open(tmp_path / "a" / "images" / "A" / "synth7_000000.png", "rb") as f1,
        open(tmp_path / "b" / "images" / "A" / "synth7_000000.png", "rb") as f2,
    ):
        assert f1.read() == f2.read()


def test_write_benchmark_rejects_empty(tmp_path):
    with pytest.raises(ValueError, match="n must be >= 1"):
        write_benchmark(tmp_path, n=0, seed=0)
    with pytest.raises(ValueError, match="splits must be a non-empty subset"):
        write_benchmark(tmp_path, n=5, seed=0, splits=("holdout",))
    with pytest.raises(ValueError, match="zoom must be >= 1"):
        write_benchmark(tmp_path, n=5, seed=0, zoom=0.5)
    with pytest.raises(ValueError, match="two_changes must be a share in"):
        write_benchmark(tmp_path, n=5, seed=0, two_changes=-0.1)


def test_synth_cli_zoom(tmp_path, capsys):
    from ccexpert.cli import main

    assert main(["synth", "--out", str(tmp_path / "bad"), "--n", "4", "--zoom", "0.5"]) == 2
    assert "zoom must be >= 1" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "z"), "--n", "10", "--zoom", "2", "--no-date-shift"]) == 0
    records = [json.loads(line) for line in (tmp_path / "z" / "train.jsonl").open()]
    assert len(records) == 8 and all(Path(tmp_path / "z" / r["mask"]).is_file() for r in records)


def test_write_only_the_test_split(tmp_path):
    paths = write_benchmark(tmp_path, n=30, seed=9, splits=("test",))
    assert set(paths) == {"test"} and not (tmp_path / "train.jsonl").exists()
    uids = [json.loads(line)["uid"] for line in paths["test"].read_text().splitlines()]
    assert uids == [f"synth9_{i:06d}" for i in range(27, 30)]


def test_scene_pair_is_georeferenced(tmp_path):
    before, after, changes_json = make_scene_pair(tmp_path, size=800, seed=1)
    for path in (before, after, tmp_path / "change_mask.tif"):
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 32633
            assert src.width == src.height == 800
            assert src.res == (0.5, 0.5)
            assert src.transform.c == 399_000.0 and src.transform.f == 5_700_000.0
    with rasterio.open(before) as src:
        assert src.count == 3 and src.dtypes[0] == "uint8"
        image = src.read()
    assert image.std() > 10
    changes = json.loads(changes_json.read_text())
    assert changes["crs"] == "EPSG:32633" and changes["chip_size"] == 384
    assert len(changes["changes"]) >= 1
    with rasterio.open(tmp_path / "change_mask.tif") as src:
        mask = src.read(1)
    for change in changes["changes"]:
        x0, y0, x1, y1 = change["pixel_box"]
        row, col = change["chip"]["row"], change["chip"]["col"]
        # the change lies inside its 384 px chip, the mask marks it, the map box is the pixel box in the CRS
        assert col * 384 <= x0 < x1 <= (col + 1) * 384 and row * 384 <= y0 < y1 <= (row + 1) * 384
        assert mask[y0:y1, x0:x1].any()
        assert change["map_box"][0] == pytest.approx(399_000.0 + 0.5 * x0)
        assert change["map_box"][3] == pytest.approx(5_700_000.0 - 0.5 * y0)
        assert len(change["captions"]) == 5
    # outside the listed chips nothing changed
    listed = {(c["chip"]["row"], c["chip"]["col"]) for c in changes["changes"]}
    for r in range(3):
        for c in range(3):
            if (r, c) not in listed:
                assert not mask[r * 384 : (r + 1) * 384, c * 384 : (c + 1) * 384].any()


def test_scene_pair_is_deterministic_and_rejects_tiny_sizes(tmp_path):
    first = make_scene_pair(tmp_path / "a", size=400, seed=3)
    second = make_scene_pair(tmp_path / "b", size=400, seed=3)
    with rasterio.open(first[1]) as a, rasterio.open(second[1]) as b:
        assert np.array_equal(a.read(), b.read())
    assert json.loads(first[2].read_text())["changes"] == json.loads(second[2].read_text())["changes"]
    with pytest.raises(ValueError, match="size must be at least 384"):
        make_scene_pair(tmp_path / "c", size=200)


def test_easy_variant_differs_only_where_something_changed():
    hard = make_pair(8, 1, changed=True)
    easy = make_pair(8, 1, changed=True, date_shift=False)
    assert easy.captions == hard.captions and np.array_equal(easy.mask, hard.mask)  # same layouts and changes
    still = make_pair(8, 2, changed=False, date_shift=False)
    assert np.array_equal(still.before, still.after)
    difference = np.abs(easy.before.astype(int) - easy.after.astype(int)).max(axis=-1)
    near_change = np.zeros_like(easy.mask, bool)
    rows, cols = np.nonzero(easy.mask)
    near_change[max(rows.min() - 12, 0) : rows.max() + 12, max(cols.min() - 12, 0) : cols.max() + 12] = True
    assert difference[~near_change].max() == 0  # (shadows and blur may spill a few pixels around a change)


def test_zoomed_variant_shows_larger_changes_with_consistent_captions():
    whole = [make_pair(9, i, changed=True) for i in range(6)]
    zoomed = [make_pair(9, i, changed=True, zoom=2.0) for i in range(6)]
    assert np.mean([p.facts.changed_fraction for p in zoomed]) > 2 * np.mean([p.facts.changed_fraction for p in whole])
    for pair in zoomed:
        assert pair.facts.changed and pair.before.shape == (256, 256, 3)
        assert all(check_caption(c, pair.facts).passed for c in pair.captions)
    assert not make_pair(9, 50, changed=False, zoom=2.0).facts.changed
