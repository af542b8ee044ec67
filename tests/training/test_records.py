"""Records JSONL: round trip, relative paths, and every bad record raising an error that names it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ccexpert_training.records import PairRecord, RecordError, check_records, read_records, write_records
from PIL import Image


def _png(path, size=(16, 16), value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)
    return path


def _line(**overrides):
    record = {
        "uid": "r1",
        "before": "img/a.png",
        "after": "img/b.png",
        "captions": ["A road is built."],
        "changed": True,
        "mask": None,
    }
    record.update(overrides)
    return json.dumps(record)


def _write(tmp_path, *lines):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_round_trip_with_relative_paths(tmp_path):
    _png(tmp_path / "img" / "a.png")
    _png(tmp_path / "img" / "b.png")
    records = read_records(_write(tmp_path, _line()))
    assert records[0].before == tmp_path / "img" / "a.png"
    before, after = records[0].load_images()
    assert before.size == (16, 16) and after.mode == "RGB"
    out = tmp_path / "copy" / "out.jsonl"
    write_records(records, out)
    stored = json.loads(out.read_text())
    assert stored["before"] == "../img/a.png"
    again = read_records(out)
    assert again[0].before.resolve() == records[0].before.resolve()
    assert again[0].captions == ("A road is built.",) and again[0].changed is True


@pytest.mark.parametrize(
    "line, message",
    [
        (_line(captions=[]), "record 'r1' .*empty caption list"),
        (_line(captions=["ok", "  "]), "record 'r1' .*caption 1 is empty"),
        (_line(captions="A road."), "'captions' must be a list"),
        (_line(uid=""), "missing or empty 'uid'"),
        (_line(before=None), "record 'r1' .*'before' must be a non-empty path"),
        (_line(changed="yes"), "'changed' must be true, false or null"),
        (_line(extra=1), "unknown keys \\['extra'\\]"),
        ("{not json", "data.jsonl:1: invalid JSON"),
    ],
)
def test_bad_lines_name_the_record(tmp_path, line, message):
    with pytest.raises(RecordError, match=message):
        read_records(_write(tmp_path, line))


def test_duplicate_uid(tmp_path):
    with pytest.raises(RecordError, match="record 'r1' .*data.jsonl:2.*duplicate uid .*data.jsonl:1"):
        read_records(_write(tmp_path, _line(), _line()))


def test_missing_image(tmp_path):
    _png(tmp_path / "img" / "a.png")
    (record,) = read_records(_write(tmp_path, _line()))
    with pytest.raises(RecordError, match="record 'r1' .*after image: file not found: .*b.png"):
        record.load_images()
    with pytest.raises(RecordError, match="record 'r1' .*after image: file not found"):
        check_records([record])


def test_unreadable_image(tmp_path):
    _png(tmp_path / "img" / "a.png")
    (tmp_path / "img" / "b.png").write_bytes(b"this is not a png")
    (record,) = read_records(_write(tmp_path, _line()))
    with pytest.raises(RecordError, match="record 'r1' .*after image: cannot read .*b.png"):
        record.load_images()
    with pytest.raises(RecordError, match="record 'r1' .*after image: cannot read"):
        record.check_images()


def test_truncated_image_fails_on_decode(tmp_path):
    _png(tmp_path / "img" / "a.png")
    good = _png(tmp_path / "img" / "b.png", value=7)
    good.write_bytes(good.read_bytes()[:60])
    (record,) = read_records(_write(tmp_path, _line()))
    with pytest.raises(RecordError, match="record 'r1' .*after image: cannot read"):
        record.load_images()


def test_size_mismatch(tmp_path):
    _png(tmp_path / "img" / "a.png", size=(16, 16))
    _png(tmp_path / "img" / "b.png", size=(16, 20))
    (record,) = read_records(_write(tmp_path, _line()))
    with pytest.raises(RecordError, match="record 'r1' .*sizes differ: before 16x16, after 16x20"):
        record.load_images()
    with pytest.raises(RecordError, match="sizes differ"):
        check_records([record])


def test_empty_captions_allowed_only_when_not_required(tmp_path):
    records = read_records(_write(tmp_path, _line(captions=[])), require_captions=False)
    assert records[0].captions == ()
    with pytest.raises(RecordError, match="empty caption list"):
        check_records(records, check_images=False)


def test_record_where_mentions_source():
    record = PairRecord("x", tmp := __import__("pathlib").Path("a"), tmp, ("c",), source="f.jsonl:3")
    assert record.where() == "record 'x' (f.jsonl:3)"


def test_change_mask_loading_and_its_failures(tmp_path):
    _png(tmp_path / "img" / "a.png")
    _png(tmp_path / "img" / "b.png")
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[2:5, 3:9] = 7  # semantic class ids: any nonzero value is a change
    Image.fromarray(mask).save(tmp_path / "img" / "m.png")
    (record,) = read_records(_write(tmp_path, _line(mask="img/m.png")))
    before, _ = record.load_images()
    loaded = record.load_mask(before.size)
    assert loaded.shape == (16, 16) and np.count_nonzero(loaded) == 18
    (no_mask,) = read_records(_write(tmp_path, _line()))
    assert no_mask.load_mask(before.size) is None
    with pytest.raises(RecordError, match=r"record 'r1' .*change mask: size 16x16 differs from the images' 8x8"):
        record.load_mask((8, 8))
    (tmp_path / "img" / "m.png").write_bytes(b"not a png")
    with pytest.raises(RecordError, match="record 'r1' .*change mask: cannot read"):
        record.load_mask(before.size)
    (tmp_path / "img" / "m.png").unlink()
    with pytest.raises(RecordError, match="record 'r1' .*change mask: file not found"):
        record.load_mask(before.size)
