"""Change-detection sets -> records: LEVIR-CD / SYSU-CD / SECOND layouts, PNG and GeoTIFF, failure modes, and the
real LEVIR-CD and DSIFN samples of ../shared/data when present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from ccexpert.nochange import is_no_change
from ccexpert_training.builders import BuildError, build_records, detect_layout
from ccexpert_training.maskcaption.gates import check_caption
from ccexpert_training.records import read_records
from PIL import Image
from rasterio.transform import from_origin

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _cd_set(root: Path, folders=("A", "B", "label")) -> None:
    rng = np.random.default_rng(0)
    before = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    label = np.zeros((64, 64), np.uint8)
    label[4:14, 4:14] = 255
    label[4:14, 16:26] = 255
    for name, mask in (("p1.png", label), ("p2.png", np.zeros_like(label))):
        _png(root / folders[0] / name, before)
        _png(root / folders[1] / name, before[::-1].copy())
        _png(root / folders[2] / name, mask)


def test_levircd_layout_png(tmp_path):
    _cd_set(tmp_path / "set")
    stats = build_records(tmp_path / "set", tmp_path / "out" / "records.jsonl")
    assert (stats.pairs, stats.changed, stats.converted_images) == (2, 1, 0)
    records = {r.uid: r for r in read_records(tmp_path / "out" / "records.jsonl")}
    changed, unchanged = records["set_p1"], records["set_p2"]
    assert changed.changed is True
    assert changed.captions[0] == "two houses are built in the upper left corner of the scene"
    assert unchanged.changed is False and all(is_no_change(c) for c in unchanged.captions)
    assert changed.before.is_file() and changed.mask.is_file()


def test_sysucd_layout_with_splits(tmp_path):
    for split in ("train", "val"):
        _cd_set(tmp_path / "sysu" / split, ("time1", "time2", "label"))
    assert detect_layout(tmp_path / "sysu")[0] == "sysucd"
    build_records(tmp_path / "sysu", tmp_path / "r.jsonl")
    uids = [json.loads(line)["uid"] for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert uids == ["sysu_train_p1", "sysu_train_p2", "sysu_val_p1", "sysu_val_p2"]


def test_second_semantic_maps_give_class_and_kind(tmp_path):
    root = tmp_path / "second"
    image = np.full((90, 90, 3), 120, np.uint8)
    white = np.full((90, 90, 3), 255, np.uint8)
    label1, label2 = white.copy(), white.copy()
    label1[60:85, 60:85] = (0, 255, 0)  # tree ...
    label2[60:85, 60:85] = (128, 128, 128)  # ... becomes bare ground: trees removed, bottom right
    label1[5:20, 5:20] = (128, 128, 128)  # ground ...
    label2[5:20, 5:20] = (128, 0, 0)  # ... becomes a building, top left
    for folder, array in (("im1", image), ("im2", image), ("label1", label1), ("label2", label2)):
        _png(root / folder / "x.png", array)
    build_records(root, tmp_path / "r.jsonl")
    record = json.loads((tmp_path / "r.jsonl").read_text())
    caption = record["captions"][0]
    assert caption.startswith("some trees are removed in the lower right corner")
    assert "a house is built in the upper left corner" in caption


def test_geotiff_sources_are_converted(tmp_path):
    root = tmp_path / "geo"
    data = (np.arange(64 * 64 * 4, dtype=np.uint16).reshape(4, 64, 64) * 7) % 4000
    for folder in ("A", "B"):
        (root / folder).mkdir(parents=True)
        with rasterio.open(
            root / folder / "t.tif",
            "w",
            driver="GTiff",
            width=64,
            height=64,
            count=4,
            dtype="uint16",
            crs="EPSG:32633",
            transform=from_origin(0, 0, 1, 1),
        ) as dst:
            dst.write(data)
    label = np.zeros((64, 64), np.uint8)
    label[30:50, 30:50] = 1
    _png(root / "label" / "t.png", label)
    stats = build_records(root, tmp_path / "out" / "r.jsonl")
    assert stats.converted_images == 2
    record = next(iter(read_records(tmp_path / "out" / "r.jsonl")))
    with Image.open(record.before) as im:
        assert im.mode == "RGB" and im.size == (64, 64)
    assert record.captions[0] == "a house is built in the center of the scene"


def test_class_and_kind_options(tmp_path):
    _cd_set(tmp_path / "set")
    build_records(tmp_path / "set", tmp_path / "r.jsonl", cls="road", kind="disappear")
    first = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert first["captions"][0].startswith("two roads are removed")


def test_failures_name_the_problem(tmp_path):
    with pytest.raises(BuildError, match="no change-detection layout found"):
        (tmp_path / "empty").mkdir()
        build_records(tmp_path / "empty", tmp_path / "r.jsonl")
    _cd_set(tmp_path / "set")
    (tmp_path / "set" / "B" / "p2.png").unlink()
    with pytest.raises(BuildError, match="no matching B file"):
        build_records(tmp_path / "set", tmp_path / "r.jsonl")
    _cd_set(tmp_path / "bad")
    (tmp_path / "bad" / "label" / "p1.png").write_bytes(b"not an image")
    with pytest.raises(BuildError, match="cannot read raster"):
        build_records(tmp_path / "bad", tmp_path / "r.jsonl")
    _cd_set(tmp_path / "size")
    _png(tmp_path / "size" / "label" / "p1.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(BuildError, match="mask size"):
        build_records(tmp_path / "size", tmp_path / "r.jsonl")
    assert not (tmp_path / "r.jsonl").exists()  # nothing half-written


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["levircd", "dsifn"])
def test_shared_change_detection_samples(tmp_path, name):
    root = SHARED / name
    if not (root / "A").is_dir():
        pytest.skip(f"{root} is absent (optional shared sample data)")
    out = tmp_path / f"{name}.jsonl"
    stats = build_records(root, out)
    records = list(read_records(out))
    assert stats.pairs == len(records) == len(list((root / "A").glob("*.png")))
    for record in records:
        with Image.open(record.mask) as mask:
            changed = bool(np.asarray(mask).any())
        assert record.changed == changed
        assert len(record.captions) == 5
    if name == "levircd":  # train_386_0512_0768 has an all-zero mask: the no-change example
        unchanged = next(r for r in records if r.uid.endswith("train_386_0512_0768"))
        assert unchanged.changed is False and is_no_change(unchanged.captions[0])
    for record in records:
        facts_ok = [check_caption(c, _facts_of(record)).passed for c in record.captions]
        assert all(facts_ok)


def _facts_of(record):
    from ccexpert_training.maskcaption.facts import extract_facts

    with Image.open(record.mask) as mask:
        return extract_facts(np.asarray(mask))
