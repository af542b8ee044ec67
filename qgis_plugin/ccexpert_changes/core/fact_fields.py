"""The change-fact fields of a tile (``objects``, ``actions``, ``n_objects``, ``where``, ``change_kind``, ``facts``),
computed from its caption by :func:`tile_fields`; ``core.fields.make_record`` adds them to every record, so the
plugin and ``ccexpert describe`` write the same values. Text fields are comma-separated in the enumerations' order,
so ``"objects" LIKE '%building%'`` works in QGIS; ``change_kind`` is one readable category for styling and filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .facts import ACTIONS, CELLS, MASS_NOUNS, OBJECT_CLASSES, Fact, facts_json, parse_caption

_KIND_NOUN = {
    "building": "buildings",
    "road": "roads",
    "vegetation": "vegetation",
    "parking_lot": "parking lots",
    "water": "water",
    "bareland": "bareland",
    "sports_field": "sports fields",
    "other": "other objects",
}
NO_CHANGE_KIND = "no change"
UNREAD_KIND = "unrecognised change"
MIXED_KIND = "mixed"


def _kind(cls: str, action: str) -> str:
    if cls == "vegetation" and action == "disappeared":
        return "vegetation lost"
    return f"{_KIND_NOUN[cls]} {action}"


CHANGE_KINDS: tuple[str, ...] = (
    tuple(_kind(c, a) for c in OBJECT_CLASSES for a in ACTIONS)
    + tuple(f"{_KIND_NOUN[c]} replaced" for c in OBJECT_CLASSES)
    + (MIXED_KIND, UNREAD_KIND, NO_CHANGE_KIND)
)
"""Every value of the ``change_kind`` field (the categorized style has one class per value)."""

_LAND = frozenset({"vegetation", "bareland"})


def _first(classes: set[str]) -> str:
    return next(c for c in OBJECT_CLASSES if c in classes)


def change_kind(changed: bool, facts: Sequence[Fact]) -> str:
    """One readable kind of change for a tile, for styling and filtering.

    The main change wins over what it replaced: "trees are replaced by houses" is "buildings appeared" (land cover,
    vegetation or bareland, giving way to a new object is how LEVIR-CC describes construction). Among several
    new (or removed) classes the first of OBJECT_CLASSES names the kind ("roads and houses are built" is "buildings
    appeared"; ``objects`` lists both). New and removed objects other than land cover together are "mixed", unless
    they are one class ("an old building is replaced by a new one": "buildings replaced")."""
    if not facts:
        return UNREAD_KIND if changed else NO_CHANGE_KIND
    appeared = {f.object for f in facts if f.action == "appeared"}
    disappeared = {f.object for f in facts if f.action == "disappeared"}
    new = appeared - {"bareland"}
    gone = disappeared - _LAND if new else disappeared - {"bareland"}
    if new and gone:
        if new == gone and len(new) == 1:
            return f"{_KIND_NOUN[_first(new)]} replaced"
        return MIXED_KIND
    if new:
        return _kind(_first(new), "appeared")
    if gone:
        return _kind(_first(gone), "disappeared")
    return _kind("bareland", "appeared" if appeared else "disappeared")


def n_objects(facts: Sequence[Fact]) -> int | None:
    """Objects counted by the caption: the sum of the counts, None when some countable object has no number
    ("several houses") or there is no fact. Land cover named as a mass ("the bareland", "vegetation") is not an
    object and not counted."""
    if not facts:
        return None
    total = 0
    for fact in facts:
        if fact.count is not None:
            total += fact.count
        elif fact.quantity is not None or fact.word not in MASS_NOUNS:
            return None
    return total


def tile_fields(caption: str | None, changed: bool | None) -> dict[str, Any]:
    """The fact fields of one tile record (core.fields.FACT_FIELDS), all None for a tile without a caption.

    ``objects``, ``actions`` and ``where`` are comma-separated, in the enumerations' order, so that
    ``"objects" LIKE '%building%'`` filters work in QGIS; ``facts`` is the JSON of :func:`parse_caption`."""
    if caption is None or changed is None:
        return dict.fromkeys(FACT_FIELD_NAMES)
    parsed = parse_caption(caption)
    facts = parsed.facts if changed else ()
    objects = {f.object for f in facts}
    actions = {f.action for f in facts}
    cells = {c for f in facts for c in f.where}
    return {
        "objects": ",".join(c for c in OBJECT_CLASSES if c in objects),
        "actions": ",".join(a for a in ACTIONS if a in actions),
        "n_objects": n_objects(facts) if changed else 0,
        "where": ",".join(c for c in CELLS if c in cells),
        "change_kind": change_kind(bool(changed), facts),
        "facts": facts_json(facts),
    }


FACT_FIELD_NAMES: tuple[str, ...] = ("objects", "actions", "n_objects", "where", "change_kind", "facts")
