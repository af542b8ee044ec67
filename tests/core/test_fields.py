"""Output layer fields (docs/ARCHITECTURE.md "Output layer fields")."""

from __future__ import annotations

import re

import pytest
from ccexpert_changes.core import fields, sources


def test_field_list_is_the_contract():
    assert fields.FIELD_NAMES == (
        "tile_id",
        "row",
        "col",
        "caption",
        "confidence",
        "changed",
        "status",
        "error",
        "nodata_before",
        "nodata_after",
        "model",
        "backend",
        "run_id",
        "created_utc",
        "objects",
        "actions",
        "n_objects",
        "where",
        "change_kind",
        "facts",
    )
    assert fields.FIELD_TYPES["confidence"] == "real" and fields.FIELD_TYPES["changed"] == "int"
    assert fields.LAYER_NAME == "change_captions"
    assert fields.STATUSES == ("ok", "error", "skipped_nodata")


def test_make_record_ok_and_skipped():
    ok = fields.make_record(
        tile_id="r00000_c00001_abcdef01",
        row=0,
        col=1,
        status="ok",
        caption="a road",
        confidence=0.5,
        changed=True,
        nodata_before=0.0,
        nodata_after=0.25,
        run_id="x",
    )
    assert list(ok) == list(fields.FIELD_NAMES)
    assert ok["changed"] == 1 and ok["confidence"] == 0.5
    assert (ok["row"], ok["col"]) == (1, 2)  # 1-based for people (issue 25.8); the tile id keeps grid indexes
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


def _meta(**kw):
    base = dict(
        before="/a/b.tif",
        after="/a/a.tif",
        bands="1,2,3",
        nodata=None,
        chip_size=384,
        overlap=0,
        grid_hash="ab12cd34",
        stretch={"passthrough": True},
        model="echo 1",
        before_source={"path": "/a/b.tif", "size": 10, "content": "aa"},
        after_source={"path": "/a/a.tif", "size": 10, "content": "bb"},
    )
    base.update(kw)
    return fields.run_metadata(**base)


def test_source_identity_tells_scenes_apart_but_not_copies(tmp_path):
    a, b, copy = tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / "sub" / "copy.tif"
    a.write_bytes(b"II*\x00" + bytes(range(256)) * 5000)
    b.write_bytes(b"II*\x00" + bytes(range(255, -1, -1)) * 5000)  # same size, other pixels
    copy.parent.mkdir()
    copy.write_bytes(a.read_bytes())
    ia, ib, ic = (sources.source_identity(str(p)) for p in (a, b, copy))
    assert ia["size"] == ib["size"] and ia["content"] != ib["content"]
    assert ic["content"] == ia["content"] and ic["path"] != ia["path"]
    assert ia["mtime"].endswith("Z")
    remote = "/vsicurl/https://example.org/x.tif"
    assert sources.source_identity(remote) == {"path": remote}  # not a local file: kept, never compared


def test_fingerprint_differences_name_what_changed():
    stored = _meta()
    assert fields.fingerprint_differences(stored, _meta()) == []
    # a moved raster with the same content is the same scene
    moved = _meta(before_source={"path": "/elsewhere/b.tif", "size": 10, "content": "aa"}, before="/elsewhere/b.tif")
    assert fields.fingerprint_differences(stored, moved) == []
    other = _meta(
        before_source={"path": "/a/b.tif", "size": 10, "content": "cc"},
        bands="3,2,1",
        stretch={"passthrough": False, "lo": [1.0], "hi": [2.0]},
        model="echo 2",
    )
    diffs = fields.fingerprint_differences(stored, other)
    assert [d.split(":")[0] for d in diffs] == ["before raster", "bands", "8-bit stretch", "model"]
    assert "/a/b.tif (10 bytes, content aa) then" in diffs[0]
    # an output from an older version (no sources, no model) is compared on what it has
    old = {k: v for k, v in stored.items() if k not in ("before_source", "after_source", "model")}
    assert fields.fingerprint_differences(old, other) == [d for d in diffs if d.startswith(("bands", "8-bit"))]
    # float noise from the JSON round trip is not a difference
    a = _meta(stretch={"lo": [0.1 + 0.2], "hi": [1.0]})
    assert fields.fingerprint_differences(a, _meta(stretch={"lo": [0.3], "hi": [1]})) == []


# -- issue 17: what an analyst reads in the attribute table ------------------------------------------------------------


def test_confidence_is_rounded_to_three_decimals_and_none_stays_none():
    record = fields.make_record(
        tile_id="t", row=0, col=0, status="ok", caption="a road", confidence=0.123456789, changed=True
    )
    assert record["confidence"] == 0.123
    assert (
        fields.make_record(tile_id="t", row=0, col=0, status="ok", caption="c", confidence=0.9996, changed=False)[
            "confidence"
        ]
        == 1.0
    )
    assert fields.make_record(tile_id="t", row=0, col=0, status="error", error="x")["confidence"] is None


def test_every_field_has_a_readable_alias():
    assert list(fields.FIELD_ALIASES) == list(fields.FIELD_NAMES)
    assert fields.FIELD_ALIASES["caption"] == "What changed"
    assert fields.FIELD_ALIASES["confidence"] == "Confidence (0-1)"
    assert all(alias and alias != name for name, alias in fields.FIELD_ALIASES.items())
    assert len(set(fields.FIELD_ALIASES.values())) == len(fields.FIELD_ALIASES)


def test_shipped_style_carries_the_same_aliases():
    import xml.etree.ElementTree as ET  # nosec B405 - our own shipped file

    from ccexpert_changes.core.style_table import shipped_style

    root = ET.fromstring(shipped_style())  # nosec B314 - our own shipped file
    aliases = {a.get("field"): a.get("name") for a in root.find("aliases")}
    assert aliases == fields.FIELD_ALIASES


def test_resume_refuses_fact_fields_of_another_parser_version():
    from ccexpert_changes.core.facts import PARSER_VERSION

    stored, current = _meta(), _meta()
    assert current["facts_parser"] == PARSER_VERSION
    assert fields.fingerprint_differences(stored, current) == []
    stored["facts_parser"] = "0"
    (line,) = fields.fingerprint_differences(stored, current)
    assert line.startswith("caption parser version")


def test_records_carry_the_fact_fields_of_their_caption():
    ok = fields.make_record(tile_id="t", row=0, col=0, status="ok", caption="two houses are built", changed=True)
    assert (ok["objects"], ok["actions"], ok["n_objects"], ok["change_kind"]) == (
        "building",
        "appeared",
        2,
        "buildings appeared",
    )
    error = fields.make_record(tile_id="t", row=0, col=0, status="error", error="x")
    assert all(error[name] is None for name in ("objects", "actions", "n_objects", "where", "change_kind", "facts"))
