"""Caption -> change facts (core.facts; docs/ARCHITECTURE.md "Change facts")."""

from __future__ import annotations

import json

import pytest
from ccexpert_changes.core import fact_fields as FF
from ccexpert_changes.core import facts as F
from hypothesis import given, settings
from hypothesis import strategies as st

TOP = ["top_left", "top", "top_right"]
LEFT = ["top_left", "left", "bottom_left"]
BOTTOM = ["bottom_left", "bottom", "bottom_right"]


def triples(caption: str) -> list[tuple]:
    """(object, action, count, quantity, where) of every fact, in order."""
    return [(f.object, f.action, f.count, f.quantity, list(f.where)) for f in F.parse_caption(caption).facts]


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("many buildings are constructed along the road", [("building", "appeared", None, "many", [])]),
        (
            "the trees are replaced by a house",
            [("vegetation", "disappeared", None, None, []), ("building", "appeared", 1, None, [])],
        ),
        ("a road appears at the bottom", [("road", "appeared", 1, None, BOTTOM)]),
        ("two rows of houses are built on the left", [("building", "appeared", None, "two rows of", LEFT)]),
        ("a pair of villas appear in the upper left corner", [("building", "appeared", 2, None, ["top_left"])]),
        ("some trees have been cut down at the top", [("vegetation", "disappeared", None, "some", TOP)]),
        ("three houses are demolished in the center", [("building", "disappeared", 3, None, ["center"])]),
        (
            "a house is built in the lower-right corner of the scene",
            [("building", "appeared", 1, None, ["bottom_right"])],
        ),
        (
            "the bareland is turned into a parking lot",
            [("bareland", "disappeared", None, None, []), ("parking_lot", "appeared", 1, None, [])],
        ),
        (
            "a swimming pool replaces the lawn",
            [("vegetation", "disappeared", 1, None, []), ("water", "appeared", 1, None, [])],
        ),
        (
            "a basketball court appears on the right side",
            [("sports_field", "appeared", 1, None, ["top_right", "right", "bottom_right"])],
        ),
        ("some houses are removed", [("building", "disappeared", None, "some", [])]),
        ("a few buildings disappear", [("building", "disappeared", None, "a few", [])]),
        ("a house is built in the upper left corner of the tile", [("building", "appeared", 1, None, ["top_left"])]),
        ("two completed villas are built by the road", [("building", "appeared", 2, None, [])]),
        ("two more houses are built", [("building", "appeared", 2, None, [])]),
        (
            "a t-shaped road appears in place of many trees",
            [("road", "appeared", 1, None, []), ("vegetation", "disappeared", None, "many", [])],
        ),
        (
            "the pasture is developed as a complex of buildings",
            [("vegetation", "disappeared", None, None, []), ("building", "appeared", None, None, [])],
        ),
        # a filled pond is water that disappeared (the synthetic generator's wording; was parsed as "appeared")
        ("a pond is filled on the left", [("water", "disappeared", 1, None, LEFT)]),
        ("the pond has been filled", [("water", "disappeared", 1, None, [])]),
        (
            "a pond is filled in the center of the scene and a house is built at the top of the scene",
            [("water", "disappeared", 1, None, ["center"]), ("building", "appeared", 1, None, TOP)],
        ),
        ("the pool is filled with water", [("water", "appeared", 1, None, []), ("water", "appeared", None, None, [])]),
        (
            "the bareland has been filled with villas",
            [("bareland", "appeared", None, None, []), ("building", "appeared", None, None, [])],
        ),
    ],
)
def test_levir_cc_phrasings(caption, expected):
    assert triples(caption) == expected


def test_object_lists_share_the_verb_and_clauses_keep_their_own_place_and_action():
    assert triples("some houses and roads disappear from the bareland") == [
        ("building", "disappeared", None, "some", []),
        ("road", "disappeared", None, None, []),
    ]
    assert triples("a building is built in the bottom right corner and two trees are cut down at the top") == [
        ("building", "appeared", 1, None, ["bottom_right"]),
        ("vegetation", "disappeared", 2, None, TOP),
    ]


def test_location_phrases_are_context_not_subjects():
    # the forest and the road are where it happened, not what changed
    assert [f.object for f in F.parse_caption("a building appears at the edge of the forest").facts] == ["building"]
    assert [f.object for f in F.parse_caption("the house near the road is removed").facts] == ["building"]
    # "with" after the verb adds an object with the same action
    assert triples("a road is built with houses on both sides") == [
        ("road", "appeared", 1, None, []),
        ("building", "appeared", None, None, []),
    ]


def test_replacement_by_a_new_one_gives_two_facts_of_the_same_class():
    out = F.parse_caption("a former building is replaced by a new one")
    assert [(f.object, f.action) for f in out.facts] == [("building", "disappeared"), ("building", "appeared")]
    assert FF.change_kind(True, out.facts) == "buildings replaced"


def test_no_change_captions_give_no_facts():
    for caption in ("the scene is the same as before", "There is no difference.", "almost nothing has changed"):
        out = F.parse_caption(caption)
        assert out.changed is False and out.facts == ()
    unchanged = FF.tile_fields("the two scenes seem identical", False)
    assert (unchanged["change_kind"], unchanged["n_objects"], unchanged["objects"]) == ("no change", 0, "")


def test_empty_unknown_and_very_long_input_never_raise():
    assert F.parse_caption("") == F.CaptionFacts("", False, ())
    assert F.parse_caption(None).facts == ()
    assert F.parse_caption("...,;").changed is False
    unknown = F.parse_caption("zorblax quux frobnicate")
    assert unknown.changed is True and unknown.facts == ()
    unread = FF.tile_fields("zorblax quux frobnicate", True)
    assert (unread["change_kind"], unread["n_objects"]) == ("unrecognised change", None)
    # an unknown subject noun is kept as "other" with its word
    (fact,) = F.parse_caption("two tanks are removed").facts
    assert (fact.object, fact.action, fact.count, fact.word) == ("other", "disappeared", 2, "tanks")
    long = "two houses are built at the top and " * 5000
    out = F.parse_caption(long)
    assert out.facts and len(out.facts) == 1  # read up to MAX_CAPTION_CHARS, identical facts kept once


def test_tile_fields_are_filterable_text_and_json():
    row = FF.tile_fields("the trees are replaced by two houses at the top left", True)
    assert row["objects"] == "building,vegetation"
    assert row["actions"] == "appeared,disappeared"
    assert row["where"] == "top_left"
    assert row["change_kind"] == "buildings appeared"
    assert row["n_objects"] is None  # the number of trees is not known
    assert json.loads(row["facts"])[1] == {
        "object": "building",
        "action": "appeared",
        "count": 2,
        "quantity": None,
        "where": ["top_left"],
        "word": "houses",
    }
    assert FF.tile_fields("two houses and a road are built on the bareland", True)["n_objects"] == 3
    assert FF.tile_fields("a road is built on the bareland", True)["n_objects"] == 1  # the bareland is no object
    assert FF.tile_fields(None, None) == dict.fromkeys(FF.FACT_FIELD_NAMES)


@pytest.mark.parametrize(
    ("caption", "kind"),
    [
        ("many trees are removed", "vegetation lost"),
        ("two houses are demolished", "buildings disappeared"),
        ("a road appears", "roads appeared"),
        ("roads and houses are built on the bareland", "buildings appeared"),
        ("a road is built and a house is demolished", "mixed"),
        ("the grass becomes bare land", "vegetation lost"),
    ],
)
def test_change_kind(caption, kind):
    assert FF.tile_fields(caption, True)["change_kind"] == kind
    assert kind in FF.CHANGE_KINDS


def test_a_tile_not_changed_has_no_facts_even_if_its_caption_names_objects():
    # the backend's "changed" decides; a caption the model marked unchanged adds no facts
    assert FF.tile_fields("two houses are built", False)["objects"] == ""


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_into_valid_enumerations(text):
    out = F.parse_caption(text)
    for fact in out.facts:
        assert fact.object in F.OBJECT_CLASSES and fact.action in F.ACTIONS
        assert all(c in F.CELLS for c in fact.where)
        assert fact.count is None or fact.count >= 0
    row = FF.tile_fields(text, out.changed)
    assert row["change_kind"] in FF.CHANGE_KINDS
    json.loads(row["facts"])


WORDS = [
    "a",
    "two",
    "the",
    "some",
    "houses",
    "trees",
    "road",
    "parking",
    "lot",
    "built",
    "removed",
    "replaced",
    "by",
    "into",
    "becomes",
    "at",
    "top",
    "left",
    "corner",
    "and",
    "with",
    "of",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=30))
def test_caption_like_word_salad_never_raises(words):
    out = F.parse_caption(" ".join(words))
    assert all(f.object in F.OBJECT_CLASSES for f in out.facts)
