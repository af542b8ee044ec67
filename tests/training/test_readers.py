"""Readers: LEVIR-CC (LevirCCcaptions.json layout), LEVIR-CD-style A/B/label folders, generic folders + captions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ccexpert_training.readers import (
    clean_caption,
    load_captions_mapping,
    read_change_detection,
    read_dataset,
    read_levircc,
    read_pair_folder,
)
from ccexpert_training.records import RecordError
from PIL import Image

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}")


def _png(path: Path, value: int = 90, size: int = 8, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode=None).save(path)


def _levircc(root: Path) -> None:
    images = [
        {
            "filepath": "train",
            "filename": "train_000001.png",
            "imgid": 0,
            "split": "train",
            "changeflag": 0,
            "sentences": [
                {"raw": " there is no difference .", "tokens": ["there", "is", "no", "difference"]},
                {"raw": " the scene is the same as before .", "tokens": []},
            ],
        },
        {
            "filepath": "train",
            "filename": "train_000002.png",
            "imgid": 1,
            "split": "train",
            "changeflag": 1,
            "sentences": [{"tokens": ["a", "road", "is", "built"]}],
        },
        {
            "filepath": "test",
            "filename": "test_000001.png",
            "imgid": 8148,
            "split": "test",
            "changeflag": 1,
            "sentences": [{"raw": "some houses appear ."}],
        },
    ]
    (root).mkdir(parents=True, exist_ok=True)
    (root / "LevirCCcaptions.json").write_text(json.dumps({"images": images}))
    for image in images:
        for side in "AB":
            _png(root / "images" / image["split"] / side / image["filename"])


def test_clean_caption():
    assert clean_caption(" there is no difference .") == "There is no difference."
    assert clean_caption("a road  is built", sentence_case=False) == "a road is built"
    assert clean_caption("Two houses , one road.") == "Two houses, one road."


def test_levircc_split_uids_captions_flags(tmp_path):
    _levircc(tmp_path)
    train = read_levircc(tmp_path, "train")
    assert [r.uid for r in train] == ["Levir_CC_train_img0", "Levir_CC_train_img1"]
    assert train[0].captions == ("There is no difference.", "The scene is the same as before.")
    assert train[0].changed is False and train[1].changed is True
    assert train[1].captions == ("A road is built.",)  # tokens when there is no raw text
    assert train[0].before == tmp_path / "images" / "train" / "A" / "train_000001.png"
    test = read_levircc(tmp_path, "test")
    assert [r.uid for r in test] == ["Levir_CC_test_img8148"]  # matches the reference's published uids
    for record in train + test:
        record.check_images()


def test_levircc_errors(tmp_path):
    with pytest.raises(RecordError, match="captions file not found"):
        read_levircc(tmp_path, "train")
    _levircc(tmp_path)
    with pytest.raises(RecordError, match="no pairs for split 'val'"):
        read_levircc(tmp_path, "val")
    data = json.loads((tmp_path / "LevirCCcaptions.json").read_text())
    data["images"][1]["sentences"] = []
    (tmp_path / "LevirCCcaptions.json").write_text(json.dumps(data))
    with pytest.raises(RecordError, match="Levir_CC_train_img1.*empty caption list"):
        read_levircc(tmp_path, "train")


def test_pair_folder_with_captions_and_errors(tmp_path):
    for name in ("x1.png", "x2.png"):
        _png(tmp_path / "A" / name)
        _png(tmp_path / "B" / name)
    captions = tmp_path / "caps.json"
    captions.write_text(json.dumps({"splits": {"train": {"x1.png": ["a road is built"], "x2": [["some", "trees"]]}}}))
    records = read_pair_folder(tmp_path, captions, captions_key="splits.train", uid_prefix="demo_")
    assert [(r.uid, r.captions) for r in records] == [("demo_x1", ("A road is built.",)), ("demo_x2", ("Some trees.",))]
    with pytest.raises(RecordError, match="key 'splits.val' not found"):
        load_captions_mapping(captions, "splits.val")
    with pytest.raises(RecordError, match="record 'x2'.*no captions for 'x2.png'"):
        read_pair_folder(tmp_path, {"x1.png": ["a"]})
    _png(tmp_path / "A" / "x3.png")
    with pytest.raises(RecordError, match=r"unpaired images \(only in A/: \['x3.png'\]"):
        read_pair_folder(tmp_path, captions, captions_key="splits.train")


def test_change_detection_layout(tmp_path):
    for name in ("t1.png", "t2.png"):
        for side in ("A", "B"):
            _png(tmp_path / "train" / side / name)
        _png(tmp_path / "train" / "label" / name, mode="L")
    records = read_change_detection(tmp_path, "train", captions={"t1.png": ["a house appears"]})
    assert records[0].mask == tmp_path / "train" / "label" / "t1.png"
    assert records[0].captions == ("A house appears.",) and records[0].changed is True
    assert records[1].captions == () and records[1].changed is None  # captioned later (mask -> caption)
    (tmp_path / "train" / "label" / "t2.png").unlink()
    with pytest.raises(RecordError, match="mask not found"):
        read_change_detection(tmp_path, "train")


def test_read_dataset_dispatch(tmp_path):
    _levircc(tmp_path / "levir")
    records = read_dataset({"reader": "levircc", "root": "levir", "split": "test"}, tmp_path)
    assert records[0].uid == "Levir_CC_test_img8148"
    with pytest.raises(RecordError, match="unknown reader 'nope'"):
        read_dataset({"reader": "nope"}, tmp_path)
    with pytest.raises(RecordError, match="bad arguments"):
        read_dataset({"reader": "levircc", "root": "levir", "splitt": "x"}, tmp_path)


@needs_shared
def test_shared_levircd_and_levircc_samples():
    cd = read_change_detection(SHARED / "levircd")
    assert len(cd) == 6 and all(r.mask is not None for r in cd)
    for record in cd:
        assert record.check_images() == (256, 256)
    pairs = read_pair_folder(
        SHARED / "levircc", SHARED / "levircc" / "captions_train_samples.json", captions_key="captions_tokens"
    )
    assert [r.uid for r in pairs] == ["train_000051", "train_000054"]
    assert all(len(r.captions) == 5 and r.captions[0].endswith(".") for r in pairs)
    before, after = pairs[0].load_images()
    assert before.size == after.size == (256, 256)


@needs_shared
def test_shared_levircc_captions_file_as_mapping():
    mapping = load_captions_mapping(SHARED / "levircc_captions" / "levircc_train_val_captions.json", "splits.val")
    assert len(mapping) == 1333
    train = load_captions_mapping(SHARED / "levircc_captions" / "levircc_train_val_captions.json", "splits.train")
    assert len(train) == 6815
