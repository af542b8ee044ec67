"""caption_text: trimming cut captions, dropping repeated clauses, wording positions for the tile."""

from __future__ import annotations

import pytest
from ccexpert.caption_text import drop_repeated_clauses, tidy_caption, trim_cut


def test_trim_cut_keeps_whole_clauses_or_drops_dangling_words():
    assert trim_cut("two houses are built, a road appears at the") == "two houses are built"
    assert trim_cut("a road is built while some trees are") == "a road is built"
    assert trim_cut("some houses of the scene built in") == "some houses of the scene built"
    assert trim_cut("in the") == "in"  # never empty


def test_repeated_clauses_only_exact_ones():
    assert drop_repeated_clauses("a house is built, a house is built and a road appears") == (
        "a house is built and a road appears"
    )
    assert drop_repeated_clauses("a house is built and a house is removed") == "a house is built and a house is removed"


def test_tidy_caption_leaves_no_change_phrasings_and_refuses_unknown_wording():
    assert tidy_caption("the scene is the same as before", cut=True) == "the scene is the same as before"
    assert tidy_caption("a road appears at the bottom of the scene") == "a road appears at the bottom of the tile"
    assert tidy_caption("a road appears at the bottom of the scene", wording="scene").endswith("of the scene")
    with pytest.raises(ValueError, match="wording"):
        tidy_caption("a road", wording="image")
