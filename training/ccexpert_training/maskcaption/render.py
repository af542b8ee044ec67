"""LEVIR-CC-style captions from change facts.

LEVIR-CC gives five references per pair: lower-case, no final period, 3 to ~40 words, built from a quantity
("a", "two", "several", "many"), an object ("houses", "buildings", "a road", "trees", "a parking lot"), a
change verb ("are built", "appear", "have been constructed", "are removed", "replace the woods") and a place
("in the upper left corner of the scene", "at the top", "on the left side", "in the middle"). The vocabulary
below was read off the LEVIR-CC train/val captions; unchanged pairs get LEVIR-CC's five no-change captions.

Phrasing is a pure function of the facts and the style index 0..4: the same facts always give the same five
captions, which keeps the language a small model has to learn consistent.
"""

from __future__ import annotations

from ccexpert.nochange import NO_CHANGE_CAPTIONS

from .facts import ChangeFact, ChangeFacts

NUM_STYLES = 5
NUMBER_WORDS = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five"}
MASS_CLASSES = frozenset({"forest", "grass"})

# class -> (singular, plural) per style; LEVIR-CC alternates "houses" and "buildings" freely.
NOUNS: dict[str, tuple[tuple[str, str], ...]] = {
    "building": (("house", "houses"), ("building", "buildings")),
    "road": (("road", "roads"),),
    "parking lot": (("parking lot", "parking lots"),),
    "water": (("pond", "ponds"), ("lake", "lakes")),
}
# What a changed object stood on / left behind, as LEVIR-CC names it.
GROUND_PHRASE = {"bareland": "on the bareland", "grass": "on the grassland", "forest": "in the woods"}
REPLACED_NOUN = {
    "building": "buildings",
    "road": "road",
    "parking lot": "parking lot",
    "water": "pond",
    "forest": "woods",
    "grass": "grassland",
    "bareland": "bareland",
}

CORNER_PHRASES = (
    "in the {v} {h} corner of the scene",
    "at the {t} {h} corner",
    "on the {t} {h}",
    "in the {t} {h} corner",
    "at the {t} {h} corner of the scene",
)
SIDE_PHRASES = {
    "top": (
        "at the top of the scene",
        "at the top",
        "on the top side of the scene",
        "in the upper part of the scene",
        "at the top of the scene",
    ),
    "bottom": (
        "at the bottom of the scene",
        "at the bottom",
        "on the bottom side of the scene",
        "in the lower part of the scene",
        "at the bottom of the scene",
    ),
    "left": (
        "on the left side of the scene",
        "on the left",
        "on the left side",
        "on the left side of the scene",
        "on the left",
    ),
    "right": (
        "on the right side of the scene",
        "on the right",
        "on the right side",
        "on the right side of the scene",
        "on the right",
    ),
    "center": (
        "in the center of the scene",
        "in the middle",
        "in the center",
        "in the middle of the scene",
        "in the center of the scene",
    ),
}


def location_phrase(location: str, style: int) -> str:
    """LEVIR-CC place phrase of a 3x3 grid cell; ``""`` for a spread-out change."""
    if not location:
        return ""
    if " " in location:
        vertical, horizontal = location.split()
        return CORNER_PHRASES[style % NUM_STYLES].format(
            v="upper" if vertical == "top" else "lower", t=vertical, h=horizontal
        )
    return SIDE_PHRASES[location][style % NUM_STYLES]


def quantity_word(count: int, style: int = 0) -> str:
    """The caption grammar's quantity for `count` objects: "a", "two" ... "five", "several" (6-7), "many"."""
    if count in NUMBER_WORDS:
        return NUMBER_WORDS[count]
    return "several" if count <= 7 else "many"


def _noun(fact: ChangeFact, style: int) -> str:
    options = NOUNS[fact.cls]
    singular, plural = options[style % len(options)]
    return singular if fact.count == 1 else plural


def _be(fact: ChangeFact) -> str:
    return "is" if fact.count == 1 else "are"


def _have(fact: ChangeFact) -> str:
    return "has" if fact.count == 1 else "have"


def _verb_s(fact: ChangeFact, verb: str) -> str:
    """Present tense agreeing with the count: "appears" / "appear"."""
    return verb + "s" if fact.count == 1 else verb


def _np(fact: ChangeFact, style: int, adjective: str = "") -> str:
    quantity = quantity_word(fact.count, style)
    noun = _noun(fact, style)
    words = [quantity, adjective, noun] if adjective else [quantity, noun]
    if quantity == "a" and (adjective or noun)[0] in "aeiou":
        words[0] = "an"
    return " ".join(words)


def _appear(fact: ChangeFact, style: int) -> str:
    if fact.cls in MASS_CLASSES:
        thing = "trees" if fact.cls == "forest" else "grass"
        ground = GROUND_PHRASE.get(fact.replaced or "", "") if fact.replaced != fact.cls else ""
        grow = f"{thing} {'grow' if thing == 'trees' else 'grows'} {ground}" if ground else f"more {thing} grow"
        return (
            f"some {thing} {'are' if thing == 'trees' else 'is'} planted",
            f"new {thing} {'appear' if thing == 'trees' else 'appears'}",
            f"some {thing} {'have' if thing == 'trees' else 'has'} been planted",
            grow,
            f"some new {thing} {'appear' if thing == 'trees' else 'appears'}",
        )[style]
    built = "dug" if fact.cls == "water" else "built"
    built_again = "dug" if fact.cls == "water" else "constructed"
    ground = GROUND_PHRASE.get(fact.replaced or "", "")
    np0, np1 = _np(fact, 0), _np(fact, 1)
    options = (
        f"{np0} {_be(fact)} {built}",
        f"{np1} {_verb_s(fact, 'appear')}",
        f"{np0} {_have(fact)} been {built_again}",
        f"{np1} {_be(fact)} {built} {ground}" if ground else f"{np1} {_be(fact)} {built_again}",
        f"{_np(fact, 1, 'new')} {_verb_s(fact, 'appear')}",
    )
    return options[style]


def _disappear(fact: ChangeFact, style: int) -> str:
    if fact.cls == "forest":
        return (
            "some trees are removed",
            "many trees disappear",
            "some trees have been cut down",
            "the woods are cleared",
            "some vegetation is removed",
        )[style]
    if fact.cls == "grass":
        return (
            "some grass is removed",
            "the grass disappears",
            "the grass has been cleared",
            "the grassland is cleared",
            "some grass is cleared",
        )[style]
    np0, np1 = _np(fact, 0), _np(fact, 1)
    if fact.cls == "water":
        return (
            f"{np0} {_be(fact)} filled",
            f"{np1} {_verb_s(fact, 'disappear')}",
            f"{np0} {_have(fact)} been filled",
            f"{np1} {_be(fact)} filled with soil",
            f"{_np(fact, 1, 'original')} {_have(fact)} disappeared",
        )[style]
    removed = "demolished" if fact.cls == "building" else "removed"
    return (
        f"{np0} {_be(fact)} {removed}",
        f"{np1} {_verb_s(fact, 'disappear')}",
        f"{np0} {_have(fact)} been {removed}",
        f"{np1} {_be(fact)} {'removed' if removed != 'removed' else 'gone'}",
        f"{_np(fact, 1, 'original')} {_have(fact)} disappeared",
    )[style]


def _replace(fact: ChangeFact, style: int) -> str:
    if fact.replaced not in REPLACED_NOUN:  # what was replaced is unknown: say only what appeared
        return _appear(fact, style)
    old = REPLACED_NOUN[fact.replaced]
    built = "dug" if fact.cls == "water" else "built"
    old_be = "are" if old.endswith("s") else "is"
    np0, np1 = _np(fact, 0), _np(fact, 1)
    return (
        f"{np0} {_be(fact)} {built} in place of the {old}",
        f"{np1} {_verb_s(fact, 'replace')} the {old}",
        f"the {old} {old_be} replaced by {np0}",
        f"the {old} {old_be} removed and {np1} {_be(fact)} {built}",
        f"{_np(fact, 1, 'new')} {_verb_s(fact, 'replace')} the {old}",
    )[style]


def render_fact(fact: ChangeFact, style: int) -> str:
    """One clause for one fact in style ``style`` (0..4)."""
    if not 0 <= style < NUM_STYLES:
        raise ValueError(f"style must be in 0..{NUM_STYLES - 1}, got {style}")
    kind = "appear" if fact.cls in MASS_CLASSES and fact.kind == "replace" else fact.kind
    clause = {"appear": _appear, "disappear": _disappear, "replace": _replace}[kind](fact, style)
    place = location_phrase(fact.location, style)
    return f"{clause} {place}".strip()


def render_captions(facts: ChangeFacts, max_facts: int = 2) -> list[str]:
    """Five LEVIR-CC-style captions (lower case, no period) of a pair; the no-change set when nothing changed.

    At most ``max_facts`` facts (the largest first) are described, joined by "and" as LEVIR-CC does
    ("some trees are removed and a road appears at the top").
    """
    if not facts.changed:
        return list(NO_CHANGE_CAPTIONS)
    described = facts.facts[:max_facts]
    captions = [" and ".join(render_fact(f, style) for f in described) for style in range(NUM_STYLES)]
    return captions
