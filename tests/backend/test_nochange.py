"""No-change detection (``ccexpert.nochange``): every phrasing it knows, in the case, period and spacing variants
a model or an annotator writes, and change captions that merely contain the words "no change". It decides the
``changed`` field of every output row and the change/no-change accuracy of evaluation."""

from __future__ import annotations

import pytest
from ccexpert.nochange import NO_CHANGE_CAPTIONS, is_no_change, normalise_caption

PHRASINGS = [*NO_CHANGE_CAPTIONS, "nothing has changed", "there is no change", "no change"]


def variants(phrase: str) -> list[str]:
    capital = phrase[0].upper() + phrase[1:]
    return [
        phrase,
        capital,
        phrase.upper(),
        f"{capital}.",
        f"{capital} .",
        f"  {phrase}  ",
        f"{phrase}.\n",
        phrase.replace(" ", "  "),
        phrase.replace(" ", "\t"),
        f"{capital}..",
    ]


@pytest.mark.parametrize("phrase", PHRASINGS)
def test_every_phrasing_in_every_variant_is_no_change(phrase):
    """Broken copies: dropping "nothing has changed" from the extra phrasings, or normalising without dropping
    the periods: the affected cases failed."""
    for text in variants(phrase):
        assert is_no_change(text), repr(text)


def test_the_levir_cc_five_are_there():
    assert set(NO_CHANGE_CAPTIONS) == {
        "there is no difference",
        "the two scenes seem identical",
        "the scene is the same as before",
        "no change has occurred",
        "almost nothing has changed",
    }
    assert is_no_change("No change.") and is_no_change("Nothing has changed.")


@pytest.mark.parametrize(
    "caption",
    [
        "no change in the north but a house is built in the south",
        "there is no change to the road while two buildings appear",
        "a road is built where there was no change before",
        "nothing has changed except a new building at the top",
        "the scene is the same as before except for a new pond",
        "many houses are built",
        "no",
        "change",
        "",
        "no changes",  # not one of the phrasings: a caption is no-change only when it is one of them
    ],
)
def test_change_captions_containing_the_words_are_changes(caption):
    """Broken copy: matching a phrasing anywhere in the caption (``any(p in text ...)``) called the first five
    no-change; this test failed."""
    assert not is_no_change(caption)


def test_normalisation_lowers_drops_periods_and_collapses_spacing():
    assert normalise_caption("  The Scene.  is\tthe same. ") == "the scene is the same"
    assert normalise_caption("a,b!") == "a,b!"  # other punctuation is kept, as the LEVIR-CC evaluation does
