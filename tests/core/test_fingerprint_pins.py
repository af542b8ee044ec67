"""Every field of the resume fingerprint is compared (issue 30): nodata was dropped from the comparison once and
no test failed. Each field is changed alone and must be named alone; the end-to-end ``--resume --nodata 0`` case
is in tests/backend/test_resume_pins.py."""

from __future__ import annotations

import pytest
from ccexpert_changes.core.fields import fingerprint_differences, run_metadata

SOURCE_A = {"path": "/data/a.tif", "size": 100, "mtime": "2026-01-01T00:00:00Z", "content": "a" * 40}
SOURCE_B = {"path": "/data/b.tif", "size": 200, "mtime": "2026-01-01T00:00:00Z", "content": "b" * 40}


def meta(**change):
    base = {
        "before": "/data/a.tif",
        "after": "/data/b.tif",
        "bands": "1,2,3",
        "nodata": None,
        "chip_size": 384,
        "overlap": 0,
        "grid_hash": "0123456789",
        "stretch": {"passthrough": True, "lo": [0.0], "hi": [255.0]},
        "model": "ccexpert 1",
        "before_source": SOURCE_A,
        "after_source": SOURCE_B,
    }
    base.update(change)
    built = run_metadata(
        base["before"],
        base["after"],
        base["bands"],
        base["nodata"],
        base["chip_size"],
        base["overlap"],
        base["grid_hash"],
        base["stretch"],
        model=base["model"],
        before_source=base["before_source"],
        after_source=base["after_source"],
    )
    if "facts_parser" in change:  # not a parameter: run_metadata stamps the parser's own version
        built["facts_parser"] = change["facts_parser"]
    return built


CHANGES = {
    "before raster": {"before_source": {**SOURCE_A, "content": "c" * 40}},
    "after raster": {"after_source": {**SOURCE_B, "size": 201}},
    "bands": {"bands": "3,2,1"},
    "nodata value": {"nodata": 0.0},
    "chip size": {"chip_size": 256},
    "overlap": {"overlap": 32},
    "chip grid": {"grid_hash": "9876543210"},
    "8-bit stretch": {"stretch": {"passthrough": False, "lo": [0.0], "hi": [255.0]}},
    "model": {"model": "ccexpert 2"},
    "caption parser version (the change-fact fields)": {"facts_parser": "0-older"},
}


def test_the_list_covers_every_field_of_the_run_metadata():
    assert set(meta()) - {"before", "after"} == {next(iter(c)) for c in CHANGES.values()}


@pytest.mark.parametrize("label", sorted(CHANGES))
def test_each_field_alone_is_named_alone(label):
    """Broken copy: ``("nodata", "nodata value")`` left out of the compared fields; the nodata case failed."""
    stored, current = meta(), meta(**CHANGES[label])
    differences = fingerprint_differences(stored, current)
    assert len(differences) == 1 and differences[0].startswith(f"{label}: "), differences
    assert fingerprint_differences(current, stored)[0].startswith(f"{label}: ")  # either direction


def test_nodata_none_and_zero_differ_but_equal_values_do_not():
    assert fingerprint_differences(meta(nodata=None), meta(nodata=0.0)) == ["nodata value: None then, 0.0 now"]
    assert fingerprint_differences(meta(nodata=0.0), meta(nodata=0)) == []  # 0 and 0.0 after a JSON round trip
    assert fingerprint_differences(meta(), meta(before="/elsewhere/a.tif")) == []  # a moved raster is the same
