"""Key words of change captions: what a caption says (objects, change verbs, directions, quantities).

RSICCLLM's DNPO (``../shared/reference/rsiccllm.md``) splits caption words into *key words*, which carry the
meaning, and the rest (articles, prepositions), which only affect fluency. This module holds the key-word lexicon,
grounded in the LEVIR-CC train/val vocabulary (the counts in comments are occurrences in its 34k references), and
two uses of it (the word tables themselves live in ``ccexpert_changes.core.lexicon``, shared with the
caption parser ``core.facts``):

- :func:`key_words` reduces a caption to its key words, each mapped to its *meaning group* (``houses`` and
  ``buildings`` both become ``building``), so the information filter compares what captions say, not their wording;
- :func:`swap_candidates` lists the single-word replacements that change the meaning of a caption and keep it
  grammatical: a word is replaced only by a word of the same category and grammatical slot (plural noun by plural
  noun, past participle by past participle, ...) but of a *different* meaning group, so a swap is never a synonym.

Words whose swaps would often break the grammar (``developed into``, ``the original one``, ``a few``, ``parking
lot``) are recognised as key words but never swapped, or are protected by the context rules in
:func:`swap_candidates`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ccexpert_changes.core.lexicon import DIRECTIONS as _DIRECTIONS
from ccexpert_changes.core.lexicon import FIXED_DIRECTIONS as _FIXED_DIRECTIONS
from ccexpert_changes.core.lexicon import FIXED_QUANTITIES as _FIXED_QUANTITIES
from ccexpert_changes.core.lexicon import FIXED_VERBS as _FIXED_VERBS
from ccexpert_changes.core.lexicon import OBJECTS as _OBJECTS
from ccexpert_changes.core.lexicon import QUANTITIES as _QUANTITIES
from ccexpert_changes.core.lexicon import VERBS as _VERBS
from ccexpert_changes.core.lexicon import is_no_change, normalise_caption

NO_CHANGE_KEY = "nochange"
"""The single key word a no-change caption reduces to (it has no object/verb/direction/quantity)."""


@dataclass(frozen=True)
class Entry:
    """One lexicon word: its category, meaning group and grammatical slot (swaps stay inside a slot)."""

    category: str  # "object" | "verb" | "direction" | "quantity"
    group: str  # meaning group; words of one group are synonyms for our purpose and never swapped for each other
    slot: str  # grammatical slot; a swap keeps it (e.g. "plural", "participle", "axis-lr")
    swappable: bool = True


# An object noun right after one of these is the head of a compound ("parking lot", "swimming pool") or the word
# after it is a particle of a phrasal verb ("cut down"); such positions are not swapped.
_COMPOUND_MODIFIERS = frozenset(
    {
        "parking",
        "swimming",
        "basketball",
        "football",
        "baseball",
        "golf",
        "playing",
        "storage",
        "power",
        "sports",
        "teaching",
        "car",
        "residential",
    }
)
_VERB_PARTICLES = frozenset({"into", "as", "down", "off", "up", "out", "to"})


def _build_lexicon() -> dict[str, Entry]:
    lexicon: dict[str, Entry] = {}

    def add(word: str, entry: Entry) -> None:
        if word in lexicon:
            raise AssertionError(f"lexicon word {word!r} listed twice")
        lexicon[word] = entry

    for category, table in (
        ("object", _OBJECTS),
        ("verb", _VERBS),
        ("direction", _DIRECTIONS),
        ("quantity", _QUANTITIES),
    ):
        for slot, groups in table.items():
            for group, words in groups.items():
                for word in words:
                    add(word, Entry(category, group, slot))
    for category, fixed in (("verb", _FIXED_VERBS), ("direction", _FIXED_DIRECTIONS), ("quantity", _FIXED_QUANTITIES)):
        for group, words in fixed.items():
            for word in words:
                add(word, Entry(category, group, "fixed", swappable=False))
    return lexicon


LEXICON: dict[str, Entry] = _build_lexicon()
CATEGORIES = ("object", "verb", "direction", "quantity")

_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def tokenize(caption: str) -> list[str]:
    """Lower-cased word tokens (hyphenated words such as ``lower-left`` stay one token; punctuation is dropped)."""
    return _TOKEN.findall(normalise_caption(caption))


def key_words(caption: str) -> list[str]:
    """The caption reduced to the meaning groups of its key words, in order.

    >>> key_words("Two houses have been built at the top.")
    ['two', 'building', 'build', 'top']

    A no-change caption reduces to ``["nochange"]``.
    """
    if is_no_change(caption):
        return [NO_CHANGE_KEY]
    return [LEXICON[token].group for token in tokenize(caption) if token in LEXICON]


@dataclass(frozen=True)
class Swap:
    """Replace token ``index`` (``old``) by ``new``: a same-category, same-slot word of another meaning group."""

    index: int
    old: str
    new: str
    category: str


def swap_candidates(tokens: Sequence[str], categories: Sequence[str] = CATEGORIES) -> list[Swap]:
    """Every meaning-changing single-word swap for a tokenised caption, in a fixed order.

    A word is a swap source when it is a swappable key word in one of ``categories`` and its context allows a
    replacement (not the head of a compound such as "parking lot"; not a verb followed by a particle such as
    "cut down" or "developed into"). Replacements share the word's category and slot and belong to a different
    meaning group, so the sentence keeps its grammar and changes its meaning.
    """
    swaps: list[Swap] = []
    for index, token in enumerate(tokens):
        entry = LEXICON.get(token)
        if entry is None or not entry.swappable or entry.category not in categories:
            continue
        previous = tokens[index - 1] if index > 0 else ""
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if entry.category == "object" and previous in _COMPOUND_MODIFIERS:
            continue
        if entry.category == "verb" and following in _VERB_PARTICLES:
            continue
        for word, other in LEXICON.items():
            if (
                other.category == entry.category
                and other.slot == entry.slot
                and other.group != entry.group
                and other.swappable
                and word not in (previous, following)
            ):
                swaps.append(Swap(index, token, word, entry.category))
    return swaps


def apply_swap(tokens: Sequence[str], swap: Swap) -> str:
    """The caption with one swap applied, the article before it fixed (``a`` / ``an``), as one lower-case string."""
    if tokens[swap.index] != swap.old:
        raise ValueError(f"swap {swap} does not match token {swap.index} of {list(tokens)}")
    out = list(tokens)
    out[swap.index] = swap.new
    if swap.index > 0 and out[swap.index - 1] in ("a", "an"):
        out[swap.index - 1] = "an" if swap.new[0] in "aeiou" else "a"
    return " ".join(out)


def meaning(caption: str) -> tuple[tuple[str, str], ...]:
    """The (category, meaning group) sequence of a caption's key words: two captions with different meanings
    (as far as the lexicon can tell) have different ``meaning`` values."""
    if is_no_change(caption):
        return (("nochange", NO_CHANGE_KEY),)
    return tuple((LEXICON[t].category, LEXICON[t].group) for t in tokenize(caption) if t in LEXICON)
