"""scripts/demo_summary.py decides whether the demo failed: errors, unexcused gaps, missing or too few tiles."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("demo_summary", REPO / "scripts" / "demo_summary.py")
demo_summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo_summary)


def rows(size: int = 1000, chip: int = 384) -> list[dict]:
    """A good output: every chip captioned (they all lie inside the scene, which has no nodata)."""
    n = -(-size // chip)
    return [
        {"row": r, "col": c, "status": "ok", "error": None, "nodata_before": 0.0, "nodata_after": 0.0}
        for r in range(n)
        for c in range(n)
    ]


def test_good_output_passes():
    assert demo_summary.problems(rows(), 1000, 384) == []


def test_an_error_tile_fails():
    out = rows()
    out[0].update(status="error", error="HTTP 503 engine_error: boom")
    found = demo_summary.problems(out, 1000, 384)
    assert any("1 tile(s) in error" in p and "boom" in p for p in found)


def test_every_tile_failing_fails_on_every_count():
    out = [{**r, "status": "error", "error": "HTTP 503"} for r in rows()]
    found = demo_summary.problems(out, 1000, 384)
    assert len(found) == 3  # errors, unexcused, too few captioned


def test_a_skip_the_nodata_rule_does_not_excuse_fails():
    out = rows()
    out[0].update(status="skipped_nodata")
    assert any("not captioned although under the nodata limit" in p for p in demo_summary.problems(out, 1000, 384))


def test_a_skip_the_nodata_rule_excuses_still_leaves_too_few_captioned():
    out = rows()
    out[0].update(status="skipped_nodata", nodata_before=0.8)
    assert demo_summary.problems(out, 1000, 384) == ["8 tiles captioned, fewer than the 9 chips of the scene"]


def test_missing_tiles_fail():
    found = demo_summary.problems(rows()[:-1], 1000, 384)
    assert "8 tiles in the output, the 1000 px scene has 9 chips of 384 px" in found
