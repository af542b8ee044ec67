"""RSICCLLM-style quality gates for captions written from change facts.

RSICCLLM keeps a generated caption only if (1) its key words -- object, direction, change verb, quantity --
agree with the change mask, (2) it leaks no annotation words ("mask", "segmentation"), (3) it is not over-long
or hallucinated. We apply the same gates to template captions (as a self-check) and to anything an optional
LLM rewrite returns. The fourth RSICCLLM gate, an expert cross-check, is a human step and not automated here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ccexpert.nochange import is_no_change, normalise_caption

from .facts import ChangeFacts

MIN_WORDS = 3
MAX_WORDS = 40  # LEVIR-CC train/val captions are 3..39 words long

LEAKAGE_WORDS = frozenset(
    {
        "mask",
        "masks",
        "masked",
        "pixel",
        "pixels",
        "segmentation",
        "segmented",
        "annotation",
        "annotations",
        "annotated",
        "label",
        "labels",
        "labelled",
        "labeled",
        "image1",
        "image2",
        "polygon",
        "polygons",
        "binary",
        "class",
        "classes",
        "grid",
        "cell",
        "prior",
        "facts",
        "json",
    }
)

# key word -> class. Multi-word names are matched before single words.
OBJECT_WORDS: dict[str, str] = {
    "parking lot": "parking lot",
    "parking lots": "parking lot",
    "house": "building",
    "houses": "building",
    "building": "building",
    "buildings": "building",
    "villa": "building",
    "villas": "building",
    "road": "road",
    "roads": "road",
    "street": "road",
    "streets": "road",
    "pond": "water",
    "ponds": "water",
    "lake": "water",
    "lakes": "water",
    "pool": "water",
    "water": "water",
    "tree": "forest",
    "trees": "forest",
    "woods": "forest",
    "forest": "forest",
    "vegetation": "forest",
    "plants": "forest",
    "grass": "grass",
    "grassland": "grass",
    "meadow": "grass",
    "bareland": "bareland",
    "desert": "bareland",
    "wasteland": "bareland",
}
APPEAR_WORDS = frozenset(
    {
        "built",
        "appear",
        "appears",
        "appeared",
        "constructed",
        "planted",
        "grow",
        "grows",
        "dug",
        "erected",
        "added",
        "new",
        "emerge",
        "emerges",
        "show",
        "shows",
    }
)
DISAPPEAR_WORDS = frozenset(
    {
        "demolished",
        "disappear",
        "disappears",
        "disappeared",
        "removed",
        "cleared",
        "cut",
        "filled",
        "vanished",
        "gone",
        "becomes",
    }
)
REPLACE_WORDS = frozenset({"replace", "replaces", "replaced", "place"})
DIRECTION_WORDS: dict[str, str] = {
    "top": "top",
    "upper": "top",
    "bottom": "bottom",
    "lower": "bottom",
    "left": "left",
    "right": "right",
    "center": "center",
    "middle": "center",
    "centre": "center",
}
NUMBER_VALUES = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: tuple[str, ...]


def _words(caption: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", normalise_caption(caption).replace("-", " "))


def _objects(words: list[str]) -> set[str]:
    text = " ".join(words)
    found = set()
    for phrase, cls in sorted(OBJECT_WORDS.items(), key=lambda kv: -len(kv[0])):
        pattern = rf"\b{re.escape(phrase)}\b"
        if re.search(pattern, text):
            found.add(cls)
            text = re.sub(pattern, " ", text)
    return found


def _directions(location: str) -> set[str]:
    return set(location.split()) if location else set()


def check_caption(caption: str, facts: ChangeFacts) -> GateResult:
    """Run every gate; ``reasons`` names each failure (empty when the caption passes)."""
    reasons: list[str] = []
    words = _words(caption)
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        reasons.append(f"length: {len(words)} words, expected {MIN_WORDS}..{MAX_WORDS}")
    leaked = sorted(set(words) & LEAKAGE_WORDS)
    if leaked:
        reasons.append(f"leakage words: {', '.join(leaked)}")

    if not facts.changed:
        if not is_no_change(caption):
            reasons.append("no change in the facts but the caption describes a change")
        return GateResult(not reasons, tuple(reasons))
    if is_no_change(caption):
        reasons.append("the facts hold a change but the caption says nothing changed")
        return GateResult(False, tuple(reasons))

    # Object: the main change must be named, and nothing absent from the facts may be.
    allowed_objects = {f.cls for f in facts.facts} | {f.replaced for f in facts.facts if f.replaced}
    mentioned = _objects(words)
    main = facts.facts[0]
    if main.cls not in mentioned:
        reasons.append(f"object: the main change ({main.cls}) is not named")
    extra = mentioned - allowed_objects
    if extra:
        reasons.append(f"object: names {', '.join(sorted(extra))}, which the facts do not hold")

    # Verb: the main change's kind must be expressed, and no verb kind absent from the facts may be.
    kinds = {f.kind for f in facts.facts}
    has_appear = bool(set(words) & APPEAR_WORDS)
    has_disappear = bool(set(words) & DISAPPEAR_WORDS)
    has_replace = bool(set(words) & REPLACE_WORDS) or (has_appear and has_disappear)
    # A replacement whose old class is unknown (or a vegetation "replacement") can only be said as an appearance.
    replace_as_appear = main.replaced is None or main.cls in {"forest", "grass"}
    expressed = {
        "appear": has_appear,
        "disappear": has_disappear,
        "replace": has_replace or (replace_as_appear and has_appear),
    }
    if not expressed[main.kind]:
        reasons.append(f"verb: the main change ({main.kind}) is not expressed")
    if has_disappear and not kinds & {"disappear", "replace"}:
        reasons.append("verb: says something disappeared, the facts hold no removal")
    if has_appear and not kinds & {"appear", "replace"}:
        reasons.append("verb: says something appeared, the facts hold no construction")

    # Direction: every direction word must belong to a fact's location.
    allowed_dirs = set().union(*(_directions(f.location) for f in facts.facts))
    dirs = {DIRECTION_WORDS[w] for w in words if w in DIRECTION_WORDS}
    wrong = dirs - allowed_dirs
    if wrong:
        reasons.append(f"direction: {', '.join(sorted(wrong))} does not match the change location")

    # Quantity: every number word must be the count of some fact.
    counts = {f.count for f in facts.facts}
    numbers = {NUMBER_VALUES[w] for w in words if w in NUMBER_VALUES}
    if numbers - counts:
        reasons.append(f"quantity: {sorted(numbers - counts)} does not match the counts {sorted(counts)}")
    return GateResult(not reasons, tuple(reasons))


def passes(caption: str, facts: ChangeFacts) -> bool:
    return check_caption(caption, facts).passed
