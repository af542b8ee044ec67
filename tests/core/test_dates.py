"""Before/After preselection when the dialog opens from the toolbar (core.dates)."""

from __future__ import annotations

import pytest
from ccexpert_changes.core.dates import order_pair, parse_date, pick_pair, role_hint


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("2019", (2019, 0, 0)),
        ("before (2019)", (2019, 0, 0)),
        ("2019-05-01", (2019, 5, 1)),
        ("S2_20190501_T33", (2019, 5, 1)),
        ("2019:05:01 10:30:00", (2019, 5, 1)),
        ("img_2021_07", (2021, 7, 0)),
        ("2021-07-04T10:00:00Z", (2021, 7, 4)),
        ("scene 2019 vs 2021", (2019, 0, 0)),
        ("r00001_c00002", None),
        ("after", None),
        ("", None),
        (None, None),
        ("12019", None),
        ("201905", None),  # a bare yyyymm is too ambiguous: no date
    ],
)
def test_parse_date(text, date):
    assert parse_date(text) == date


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("before", 0),
        ("after", 1),
        ("Before (2019)", 0),
        ("scene_A", 0),
        ("scene-B", 1),
        ("t1", 0),
        ("T2 mosaic", 1),
        ("pre_event", 0),
        ("post-event", 1),
        ("orthophoto", None),
        ("before_after", None),
        ("abc", None),
    ],
)
def test_role_hint(name, hint):
    assert role_hint(name) == hint


def test_older_date_is_before_whatever_the_layer_order():
    assert order_pair([("ortho_2021", None), ("ortho_2019", None)]) == ("ortho_2019", "ortho_2021")
    assert order_pair([("x", "2021:01:01 00:00:00"), ("y", "2019:06:01 00:00:00")]) == ("y", "x")
    assert order_pair([("S2_20190601", None), ("S2_20190501", None)]) == ("S2_20190501", "S2_20190601")


def test_metadata_date_wins_over_the_name():
    assert order_pair([("img_2019", "2022:01:01 00:00:00"), ("img_2020", None)]) == ("img_2020", "img_2019")


def test_names_decide_without_dates():
    assert order_pair([("after", None), ("before", None)]) == ("before", "after")
    assert order_pair([("after", None), ("before (2019)", None)]) == ("before (2019)", "after")  # the screenshot
    assert order_pair([("B", None), ("A", None)]) == ("A", "B")
    assert order_pair([("t2", None), ("t1", None)]) == ("t1", "t2")
    assert order_pair([("dem", None), ("new", None), ("old", None)]) == ("old", "new")


def test_two_different_entries_always():
    assert order_pair([("one", None), ("two", None)]) == ("one", "two")  # nothing to go by: the order given
    assert order_pair([("x", None)]) is None and order_pair([]) is None
    before, after = pick_pair([("a_2019", None), ("dem", None), ("b_2019", None)])
    assert before != after
    # three dated layers: the first two with different dates, older first
    assert order_pair([("m_2020", None), ("n_2020", None), ("o_2018", None)]) == ("o_2018", "m_2020")
