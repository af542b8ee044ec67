"""LEVIR-CC-style captions from facts: five distinct phrasings, deterministic, faithful wording."""

from __future__ import annotations

import itertools

import pytest
from ccexpert.nochange import NO_CHANGE_CAPTIONS, is_no_change
from ccexpert_training.maskcaption.facts import CHANGE_CLASSES, GRID_NAMES, ChangeFact, ChangeFacts
from ccexpert_training.maskcaption.render import location_phrase, render_captions, render_fact

LOCATIONS = [name for row in GRID_NAMES for name in row] + [""]


def _facts(*facts: ChangeFact) -> ChangeFacts:
    return ChangeFacts(tuple(facts), sum(f.area_fraction for f in facts))


def test_no_change_gets_the_levircc_phrasings():
    captions = render_captions(ChangeFacts())
    assert captions == list(NO_CHANGE_CAPTIONS)
    assert all(is_no_change(c) for c in captions)


def test_canonical_wording():
    fact = ChangeFact("building", "appear", 2, "top left", "small", 0.01, "bareland")
    assert render_captions(_facts(fact)) == [
        "two houses are built in the upper left corner of the scene",
        "two buildings appear at the top left corner",
        "two houses have been constructed on the top left",
        "two buildings are built on the bareland in the top left corner",
        "two new buildings appear at the top left corner of the scene",
    ]


@pytest.mark.parametrize(
    ("fact", "expected"),
    [
        (ChangeFact("building", "appear", 1, "center", "small", 0.01), "a house is built in the center of the scene"),
        (ChangeFact("building", "disappear", 3, "bottom", "small", 0.01), "three houses are demolished at the bottom"),
        (ChangeFact("road", "appear", 1, "top", "medium", 0.05), "a road is built at the top of the scene"),
        (
            ChangeFact("forest", "disappear", 2, "right", "large", 0.1, "bareland"),
            "some trees are removed on the right",
        ),
        (ChangeFact("water", "disappear", 1, "left", "small", 0.01, "bareland"), "a pond is filled on the left"),
        (
            ChangeFact("parking lot", "replace", 1, "bottom right", "medium", 0.03, "building"),
            "a parking lot is built in place of the buildings in the lower right corner of the scene",
        ),
        (ChangeFact("building", "appear", 9, "", "medium", 0.05), "many houses are built"),
        (ChangeFact("building", "appear", 6, "", "medium", 0.05), "several houses are built"),
    ],
)
def test_key_words(fact, expected):
    caption = render_captions(_facts(fact))[0]
    assert caption.startswith(expected)


def test_two_facts_are_joined_largest_first_and_at_most_two():
    a = ChangeFact("forest", "disappear", 1, "top", "large", 0.2, "bareland")
    b = ChangeFact("road", "appear", 1, "bottom", "medium", 0.05, "bareland")
    c = ChangeFact("building", "appear", 1, "left", "small", 0.01, "bareland")
    captions = render_captions(_facts(a, b, c))
    assert captions[0] == (
        "some trees are removed at the top of the scene and a road is built at the bottom of the scene"
    )
    assert all("house" not in cap and "building" not in cap for cap in captions)


def test_five_distinct_phrasings_for_every_fact_and_deterministic():
    for cls, kind, count, location in itertools.product(
        CHANGE_CLASSES, ("appear", "disappear", "replace"), (1, 2, 3, 5, 12), LOCATIONS
    ):
        facts = _facts(ChangeFact(cls, kind, count, location, "small", 0.01, "bareland"))
        captions = render_captions(facts)
        assert len(set(captions)) == 5, captions
        assert captions == render_captions(facts)
        assert all(c == c.lower() and not c.endswith(".") for c in captions)


def test_location_phrases():
    assert location_phrase("", 0) == ""
    assert location_phrase("bottom right", 0) == "in the lower right corner of the scene"
    assert location_phrase("center", 1) == "in the middle"


def test_style_out_of_range():
    with pytest.raises(ValueError, match="style must be in 0..4"):
        render_fact(ChangeFact("road", "appear", 1, "top", "small", 0.01), 5)


@pytest.mark.parametrize("with_other_change", [False, True])
def test_every_filled_pond_phrasing_parses_as_water_that_disappeared(with_other_change):
    """The facts parser reads back what the generator wrote: a filled pond is water lost (issue 27.8: parser
    version 1 read "a pond is filled" as water that appeared, and dropped it beside another change)."""
    from ccexpert_changes.core.facts import parse_caption

    pond = ChangeFact("water", "disappear", 1, "left", "small", 0.01, "bareland")
    houses = ChangeFact("building", "appear", 2, "top", "small", 0.01, "bareland")
    facts = (houses, pond) if with_other_change else (pond,)
    for caption in render_captions(_facts(*facts)):
        water = [(f.action, f.count, f.where) for f in parse_caption(caption).facts if f.object == "water"]
        assert water == [("disappeared", 1, ("top_left", "left", "bottom_left"))], caption
