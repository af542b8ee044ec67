"""RSICCLLM-style gates: every template caption passes; wrong object/verb/direction/quantity, leakage and bad
lengths are rejected with a reason."""

from __future__ import annotations

import itertools

import pytest
from ccexpert.nochange import NO_CHANGE_CAPTIONS
from ccexpert_training.maskcaption.facts import CHANGE_CLASSES, GRID_NAMES, ChangeFact, ChangeFacts
from ccexpert_training.maskcaption.gates import check_caption, passes
from ccexpert_training.maskcaption.render import render_captions

LOCATIONS = [name for row in GRID_NAMES for name in row] + [""]
HOUSES = ChangeFacts((ChangeFact("building", "appear", 2, "top left", "small", 0.01, "bareland"),), 0.01)


def test_every_template_caption_passes():
    for cls, kind, count, location, replaced in itertools.product(
        CHANGE_CLASSES, ("appear", "disappear", "replace"), (1, 2, 3, 6, 10), LOCATIONS,
        (None, "bareland", "grass", "forest", "building", "road"),
    ):
        facts = ChangeFacts((ChangeFact(cls, kind, count, location, "small", 0.01, replaced),), 0.01)
        for caption in render_captions(facts):
            result = check_caption(caption, facts)
            assert result.passed, (caption, result.reasons)


def test_two_fact_captions_pass():
    facts = ChangeFacts((ChangeFact("forest", "disappear", 1, "top", "large", 0.2, "bareland"),
                         ChangeFact("building", "appear", 3, "bottom left", "small", 0.01, "bareland")), 0.21)
    assert all(passes(c, facts) for c in render_captions(facts))


def test_no_change_captions():
    assert all(passes(c, ChangeFacts()) for c in NO_CHANGE_CAPTIONS)
    assert "describes a change" in check_caption("two houses are built", ChangeFacts()).reasons[0]
    assert "says nothing changed" in check_caption("there is no difference", HOUSES).reasons[0]


@pytest.mark.parametrize(
    ("caption", "reason"),
    [
        ("two roads are built in the upper left corner", "object: the main change (building) is not named"),
        ("two houses and a lake are built in the upper left corner", "object: names water"),
        ("two houses are demolished in the upper left corner", "verb: the main change (appear) is not expressed"),
        ("two houses are built in the lower left corner", "direction: bottom"),
        ("three houses are built in the upper left corner", "quantity: [3]"),
        ("two houses are built in the upper left corner of the mask", "leakage words: mask"),
        ("two changed pixels are built at the top left", "leakage words: pixels"),
        ("houses built", "length: 2 words"),
        (" ".join(["two houses are built"] * 11), "length: 44 words"),
    ],
)
def test_rejections_name_the_gate(caption, reason):
    result = check_caption(caption, HOUSES)
    assert not result.passed
    assert any(r.startswith(reason) for r in result.reasons), result.reasons


def test_disappear_words_need_a_removal():
    assert "verb: says something disappeared" in " ".join(
        check_caption("two houses are built and some trees are removed at the top left", HOUSES).reasons)


def test_free_phrasing_that_agrees_passes():
    assert passes("Two new villas have been erected at the top left corner.", HOUSES)
    assert passes("two houses show up on the bareland", HOUSES)
