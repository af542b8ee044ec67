"""Output layer fields (docs/ARCHITECTURE.md "Output layer fields")."""

from __future__ import annotations

import re

import pytest
from ccexpert_changes.core import fields


def test_field_list_is_the_contract():
    assert fields.FIELD_NAMES == (
        "tile_id", "row", "col", "caption", "confidence", "changed", "status", "error",
        "nodata_before", "nodata_after", "model", "backend", "run_id", "created_utc",
    )
    assert fields.FIELD_TYPES["confidence"] == "real" and fields.FIELD_TYPES["changed"] == "int"
    assert fields.LAYER_NAME == "change_captions"
    assert fields.STATUSES == ("ok", "error", "skipped_nodata")


def test_make_record_ok_and_skipped():
    ok = fields.make_record(tile_id="r00000_c00001_abcdef01", row=0, col=1, status="ok", caption="a road",
                            confidence=0.5, changed=True, nodata_before=0.0, nodata_after=0.25, run_id="x")
    assert list(ok) == list(fields.FIELD_NAMES)
    assert ok["changed"] == 1 and ok["confidence"] == 0.5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ok["created_utc"])
    skipped = fields.make_record(tile_id="t", row=0, col=0, status="skipped_nodata", changed=True)
    assert skipped["changed"] is None  # NULL when not captioned
    fields.check_record(ok)


def test_make_record_refuses_bad_values():
    with pytest.raises(ValueError, match="status must be one of"):
        fields.make_record(tile_id="t", row=0, col=0, status="done")
    with pytest.raises(ValueError, match="needs a caption"):
        fields.make_record(tile_id="t", row=0, col=0, status="ok")
    with pytest.raises(ValueError, match="unexpected \\['extra'\\]"):
        fields.check_record({**fields.make_record(tile_id="t", row=0, col=0, status="error"), "extra": 1})
