"""Key words and meaning-changing swaps (RSICCLLM keyword-replacement negatives)."""

from __future__ import annotations

import itertools

import pytest
from ccexpert_training.keywords import LEXICON, apply_swap, key_words, meaning, swap_candidates, tokenize

# Captions in LEVIR-CC style covering every category and the grammar traps the context rules protect.
CAPTIONS = [
    "two houses have been built at the top left corner of the scene",
    "a road appears in the lower-left corner",
    "many trees are removed and a road is built",
    "the bareland is replaced by three buildings with a parking lot",
    "some trees have been cut down at the bottom",
    "a swimming pool is built beside the house on the right",
    "the woodland is developed into two vertical roads",
    "an intersection disappears above the lake",
    "the road is rebuilt into a wider one at the top",
]


def test_key_words_map_synonyms_to_one_group_and_keep_order() -> None:
    assert key_words("Two houses have been built at the top.") == ["two", "building", "build", "top"]
    assert key_words("two buildings are constructed at the top") == ["two", "building", "build", "top"]
    assert key_words("There is no difference.") == ["nochange"]
    assert key_words("the scene looks nice") == []


def test_lexicon_groups_never_cross_categories_or_slots_ambiguously() -> None:
    for word, entry in LEXICON.items():
        assert word == word.lower() and " " not in word
        assert entry.category in ("object", "verb", "direction", "quantity")


@pytest.mark.parametrize("caption", CAPTIONS)
def test_every_swap_changes_meaning_and_keeps_slot(caption: str) -> None:
    tokens = tokenize(caption)
    swaps = swap_candidates(tokens)
    assert swaps, f"no swap for {caption!r}"
    for swap in swaps:
        old, new = LEXICON[swap.old], LEXICON[swap.new]
        assert (new.category, new.slot) == (old.category, old.slot)  # same grammatical slot: plural for plural ...
        assert new.group != old.group  # never a synonym
        rejected = apply_swap(tokens, swap)
        assert rejected != " ".join(tokens)
        assert meaning(rejected) != meaning(caption)
        # one word changed (plus possibly its article), the rest is untouched
        diff = [(a, b) for a, b in zip(tokens, rejected.split(), strict=True) if a != b]
        assert (swap.old, swap.new) in diff and len(diff) <= 2
        assert all(a in ("a", "an") for a, _ in diff if a != swap.old)


def test_context_rules_protect_compounds_and_phrasal_verbs() -> None:
    for caption, protected in [
        ("the bareland is replaced by a parking lot", set()),
        ("a swimming pool is built", {"pool"}),
        ("some trees have been cut down", {"cut"}),
        ("the woodland is developed into roads", {"developed"}),
        ("the road is extended to the lake", {"extended"}),
        ("the road is rebuilt into a wider one", {"one", "rebuilt"}),
    ]:
        sources = {s.old for s in swap_candidates(tokenize(caption))}
        assert not sources & protected, (caption, sources & protected)


def test_swaps_never_duplicate_a_neighbour_or_break_the_article() -> None:
    tokens = tokenize("a house appears at the top left corner")
    for swap in swap_candidates(tokens):
        out = apply_swap(tokens, swap).split()
        assert all(a != b for a, b in itertools.pairwise(out))
    swap = next(s for s in swap_candidates(tokenize("a house is built")) if s.new == "intersection")
    assert apply_swap(tokenize("a house is built"), swap) == "an intersection is built"


def test_no_change_captions_have_no_swaps_of_their_meaning() -> None:
    assert meaning("There is no difference.") == (("nochange", "nochange"),)
    with pytest.raises(ValueError, match="does not match"):
        apply_swap(["a", "road"], swap_candidates(tokenize("two houses"))[0])
