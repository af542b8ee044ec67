"""Change facts from a caption: what changed (object), how (appeared / disappeared), how many, and where on a 3x3 grid.

Analysts ask "where were buildings demolished, and how many?"; prose captions answer it only when read one by one.
This parser turns a LEVIR-CC style caption into facts with fixed enumerations (docs/ARCHITECTURE.md, "Change
facts"), so the output layer can be filtered and styled by kind of change. It is stdlib only and shared by the
plugin and ``ccexpert describe`` (same code, same fields). Rules, in short:

- the caption is split into clauses at "and"/"while"/"but"/commas; a part without a change verb ("some houses and
  roads disappear") joins the next clause (or the previous one at the end);
- in each clause the change verb gives the action; the object nouns before it (not inside a location phrase such as
  "in the corner of the woods") are its subjects; "with X" after the verb adds X with the same action;
- replacements give two facts: "X replaces Y", "Y is replaced by X", "Y becomes / is turned into X": Y disappeared,
  X appeared;
- a change caption without a change verb ("many houses are located near the road") reads as objects that appeared,
  LEVIR-CC's default meaning;
- counts come from numerals and articles before the noun, "a pair of" = 2; vague quantities keep the word;
- each clause's location words ("top left corner", "at the top", "on the left side", "in the center") give its cells.

Unknown words never raise: a subject noun outside the lexicon becomes object ``other`` with its word kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .lexicon import COMPOUNDS, FACT_NOUNS, FIXED_QUANTITIES, OBJECTS, is_no_change, normalise_caption

PARSER_VERSION = "2"
"""Bumped whenever the parser's output for some caption changes; stored in the run metadata, so a resume refuses to
mix fields of two parser versions in one layer."""

OBJECT_CLASSES: tuple[str, ...] = (
    "building",
    "road",
    "vegetation",
    "parking_lot",
    "water",
    "bareland",
    "sports_field",
    "other",
)
ACTIONS: tuple[str, ...] = ("appeared", "disappeared")
CELLS: tuple[str, ...] = (
    "top_left",
    "top",
    "top_right",
    "left",
    "center",
    "right",
    "bottom_left",
    "bottom",
    "bottom_right",
)
MAX_CAPTION_CHARS = 4000  # longer input is cut here: a caption is a sentence, this bounds the parser's work

# Lexicon meaning groups (core.lexicon.OBJECTS) -> fact object classes; "vehicle" is not a change class: other.
_GROUP_TO_CLASS = {
    "building": "building",
    "road": "road",
    "vegetation": "vegetation",
    "water": "water",
    "sports": "sports_field",
    "bareland": "bareland",
}
_NOUN_CLASS: dict[str, str] = {}
for _slot in OBJECTS.values():
    for _group, _names in _slot.items():
        for _word in _names:
            _NOUN_CLASS[_word] = _GROUP_TO_CLASS.get(_group, "other")
for _cls, _names in FACT_NOUNS.items():
    for _word in _names:
        _NOUN_CLASS.setdefault(_word, _cls)
# Mass nouns and land cover: no count ("the bareland", "vegetation"); not objects in ``n_objects``.
MASS_NOUNS = frozenset(OBJECTS["mass"]["vegetation"] + OBJECTS["mass"]["bareland"] + OBJECTS["mass"]["water"]) | {
    "greenery",
    "soil",
    "ground",
    "farmland",
    "cropland",
    "wood",
    "space",
    "forest",
    "desert",
    "woodland",
    "jungle",
    "wasteland",
    "grassland",
    "meadow",
    "pasture",
    "moorland",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _words_list(text: str) -> list[str]:
    return text.split()


_APPEAR = _words(
    "built build builds constructed erected added appear appears appeared appearing emerge emerges emerged "
    "rebuilt reconstructed completed planted established paved grown grow grows extended widened broadened "
    "expanded enlarged lengthened increased increases risen finished laid developed"
)
_DISAPPEAR = _words(
    "removed demolished cleared knocked bulldozed flattened leveled levelled disappear disappears disappeared "
    "disappearing vanish vanishes vanished gone missing withered destroyed decreased decreases reduced "
    "eliminated erased dismantled torn"
)
_REPLACE_ACTIVE = frozenset({"replace", "replaces", "replacing", "replaced"})  # "X replaces Y", "Y replaced by X"
_BECOME = frozenset({"becomes", "become", "became", "turned", "turns", "turn", "converted", "transformed", "changed"})
# "a pond is filled (with soil)": the water disappeared; "the bareland is filled with houses": the houses appeared
_FILL = frozenset({"filled", "drained"})
_PHRASAL = {("cut", "down"), ("cut", "off"), ("show", "up"), ("shows", "up"), ("showed", "up"), ("set", "up")}
_PHRASAL_ACTION = {
    "cut": "disappeared",
    "show": "appeared",
    "shows": "appeared",
    "showed": "appeared",
    "set": "appeared",
}
_AUX = _words("is are was were be been being has have had will")
_LOCATION_PREPS = _words(
    "in on at near along beside besides around by across among amongst between from inside over through "
    "surrounding alongside behind under beneath above below next to within outside onto toward towards "
    "where which that whose adjacent close"
)
_CLAUSE_BREAKS = frozenset({"and", "while", "but", "whereas", "meanwhile", "then", "also", ",", ";"})
_NUMBERS = {w: i for i, w in enumerate(_words_list("zero one two three four five six seven eight nine ten"))} | {
    "eleven": 11,
    "twelve": 12,
    "a": 1,
    "an": 1,
    "single": 1,
    "another": 1,
}
_VAGUE = frozenset(
    {w for words in FIXED_QUANTITIES.values() for w in words} - {"one", "single"}
    | {"massive", "numerous", "multiple", "more", "various", "lots", "dozens", "plenty", "much", "large-scale"}
)
_GROUPERS = _words(
    "row rows line lines group groups cluster clusters series pair couple lot lots number block blocks piece "
    "pieces patch patches set sets strip strips string array couple"
)
_DETERMINERS = _words("the this that these those its their his her")
_PRONOUNS = frozenset({"one", "ones"})  # "a new one": the object of the clause's other half
_NOT_NOUNS = (
    _APPEAR
    | _DISAPPEAR
    | _REPLACE_ACTIVE
    | _BECOME
    | _AUX
    | _LOCATION_PREPS
    | _CLAUSE_BREAKS
    | _DETERMINERS
    | frozenset(_NUMBERS)
    | _VAGUE
    | _words("of with into to as by for there it them they new old original former existing")
    | _words("scene image picture tile corner side sides edge part half end top bottom left right middle")
    | _words("center centre upper lower lots")
)
_VERTICAL = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
_HORIZONTAL = {"left": "left", "right": "right"}
_CENTER = frozenset({"center", "centre", "middle", "central"})
_CORNER_WORDS = {f"{v}-{h}": (_VERTICAL[v], h) for v in _VERTICAL for h in _HORIZONTAL}
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*|[,;]")


@dataclass(frozen=True)
class Fact:
    """One change: ``object`` (OBJECT_CLASSES), ``action`` (ACTIONS), ``count`` (int, or None with ``quantity``
    holding the caption's vague quantity such as "several" or "a row of"), ``where`` (CELLS, grid order) and
    ``word`` (the caption's noun, which names an ``other`` object)."""

    object: str
    action: str
    count: int | None
    where: tuple[str, ...]
    word: str
    quantity: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "action": self.action,
            "count": self.count,
            "quantity": self.quantity,
            "where": list(self.where),
            "word": self.word,
        }


@dataclass(frozen=True)
class CaptionFacts:
    """A caption's facts; ``changed`` is False for a no-change caption (which has no facts)."""

    caption: str
    changed: bool
    facts: tuple[Fact, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"caption": self.caption, "changed": self.changed, "facts": [f.to_dict() for f in self.facts]}


def tokenize(caption: str) -> list[str]:
    """Lower-case word tokens, commas and semicolons kept as clause breaks; at most MAX_CAPTION_CHARS are read."""
    return _TOKEN.findall(normalise_caption(str(caption)[:MAX_CAPTION_CHARS]))


def parse_caption(caption: str | None) -> CaptionFacts:
    """The change facts of one caption. A no-change phrasing, and text without a word (empty, None, punctuation),
    give ``changed=False`` and no facts; any other text is a change caption, with the facts the parser finds
    (possibly none: words it does not know)."""
    text = "" if caption is None else str(caption)
    if is_no_change(text):
        return CaptionFacts(text, False, ())
    tokens = tokenize(text)
    if not any(t not in _CLAUSE_BREAKS for t in tokens):
        return CaptionFacts(text, False, ())
    facts: list[Fact] = []
    for clause in _clauses(tokens):
        facts.extend(_clause_facts(clause))
    if not facts:
        facts = _verbless_facts(tokens)
    return CaptionFacts(text, True, tuple(_dedupe(facts)))


def _dedupe(facts: Iterable[Fact]) -> list[Fact]:
    seen: set[Fact] = set()
    out = []
    for fact in facts:
        if fact not in seen:
            seen.add(fact)
            out.append(fact)
    return out


def _is_verb(tokens: Sequence[str], i: int) -> bool:
    word = tokens[i]
    if word in _APPEAR or word in _DISAPPEAR or word in _REPLACE_ACTIVE or word in _BECOME or word in _FILL:
        return True
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    return (word, nxt) in _PHRASAL


def _clauses(tokens: Sequence[str]) -> list[list[str]]:
    """Split at clause breaks; a part without a change verb joins the next part (the last one joins the previous)."""
    parts: list[list[str]] = [[]]
    for token in tokens:
        if token in _CLAUSE_BREAKS:
            if parts[-1]:
                parts.append([])
            continue
        parts[-1].append(token)
    parts = [p for p in parts if p]
    clauses: list[list[str]] = []
    pending: list[str] = []
    for part in parts:
        if any(_is_verb(part, i) for i in range(len(part))):
            clauses.append(pending + (["and"] if pending else []) + part)
            pending = []
        else:
            pending = pending + (["and"] if pending else []) + part
    if pending:
        if clauses:
            clauses[-1] = clauses[-1] + ["and"] + pending
        else:
            clauses.append(pending)
    return clauses


@dataclass(frozen=True)
class _Noun:
    index: int  # index of the head word
    start: int  # index of the first word of the noun (a compound's modifier)
    cls: str
    word: str


def _noun_at(tokens: Sequence[str], i: int) -> _Noun | None:
    word = tokens[i]
    if i + 1 < len(tokens) and (word, tokens[i + 1]) in COMPOUNDS:
        return _Noun(i + 1, i, COMPOUNDS[(word, tokens[i + 1])], f"{word} {tokens[i + 1]}")
    if i > 0 and (tokens[i - 1], word) in COMPOUNDS:
        return None  # the head of a compound found from its modifier
    cls = _NOUN_CLASS.get(word)
    if cls is None:
        return None
    return _Noun(i, i, cls, word)


def _nouns(tokens: Sequence[str], start: int, stop: int, *, skip_locations: bool) -> list[_Noun]:
    """Object nouns in tokens[start:stop]; with ``skip_locations``, nouns inside a location phrase ("in the corner of
    the woods", "near the road") are context, not subjects, up to the next "and"/"with"."""
    out: list[_Noun] = []
    in_location = False
    i = start
    while i < stop:
        word = tokens[i]
        previous = tokens[i - 1] if i > 0 else ""
        if skip_locations and word in _LOCATION_PREPS:
            in_location = True
        elif word in ("and", "with", "or", "plus"):
            in_location = False
        elif (word in _VAGUE or (word in _NUMBERS and word not in ("a", "an"))) and previous not in ("of", "the"):
            in_location = False  # "on both sides of the road three rows of houses are built"
        else:
            noun = _noun_at(tokens, i)
            if noun is not None and noun.index < stop:
                if not in_location and not _is_grouper(tokens, noun, stop):
                    out.append(noun)
                i = noun.index + 1
                continue
        i += 1
    return out


def _is_grouper(tokens: Sequence[str], noun: _Noun, stop: int) -> bool:
    """ "a complex of buildings", "a row of villas": the noun after "of" is the object, this one only groups it."""
    k = noun.index + 1
    if k >= stop or tokens[k] != "of":
        return False
    return any(_noun_at(tokens, m) is not None for m in range(k + 1, min(stop, k + 4)))


def _unknown_subject(tokens: Sequence[str], start: int, stop: int) -> _Noun | None:
    """The head word just before a verb when no known object is there ("two tanks are removed" -> tanks)."""
    j = stop - 1
    while j >= start and tokens[j] in _AUX:
        j -= 1
    if j < start:
        return None
    word = tokens[j]
    if word in _NOT_NOUNS or word in _NOUN_CLASS or word.isdigit() or word.endswith("ly"):
        return None
    return _Noun(j, j, "other", word)


def _count(tokens: Sequence[str], noun: _Noun) -> tuple[int | None, str | None]:
    """(count, quantity word): look left of the noun past adjectives for a numeral, an article or a quantifier."""
    plural = noun.word.endswith("s") and noun.word not in ("grass", "canvas")
    mass = noun.word in MASS_NOUNS
    j = noun.start - 1
    steps = 0
    while j >= 0 and steps < 5:
        word = tokens[j]
        if word == "of" and j >= 1 and tokens[j - 1] in _GROUPERS:
            grouper = tokens[j - 1]
            before = tokens[j - 2] if j >= 2 else ""
            if grouper in ("pair", "couple") and before in ("a", "one"):
                return 2, None
            if grouper in ("lot", "lots", "number") and before in ("a", ""):
                return None, "many"
            lead = before if before in _NUMBERS or before in _VAGUE else ""
            return None, " ".join(t for t in (lead, grouper, "of") if t)
        if word in _NUMBERS:
            if word in ("a", "an") and j + 1 < len(tokens) and tokens[j + 1] in ("few", "lot", "number", "couple"):
                return None, "a few" if tokens[j + 1] == "few" else "many"
            if mass or (plural and word in ("a", "an", "another", "single", "one")):
                return None, None
            return _NUMBERS[word], None
        if word in _VAGUE:
            if word == "more" and j >= 1 and tokens[j - 1] in _NUMBERS and tokens[j - 1] not in ("a", "an"):
                return _NUMBERS[tokens[j - 1]], None  # "two more houses"
            if word == "few" and j >= 1 and tokens[j - 1] == "a":
                return None, "a few"
            return None, word
        if word in _DETERMINERS or word in _LOCATION_PREPS or word in _CLAUSE_BREAKS or word in ("with", "of"):
            break
        if word in _AUX or (word in _NOUN_CLASS and word != noun.word):
            break  # participles ("two completed villas") are adjectives here and are skipped
        j -= 1
        steps += 1
    if mass or plural:
        return None, None
    return 1, None  # a singular count noun ("the house") is one object


def _where(tokens: Sequence[str]) -> tuple[str, ...]:
    """Grid cells named by a clause's location words, in CELLS order."""
    cells: set[str] = set()
    n = len(tokens)
    used: set[int] = set()
    for i, word in enumerate(tokens):
        if i in used:
            continue
        if word in _CORNER_WORDS:
            v, h = _CORNER_WORDS[word]
            cells.add(f"{v}_{h}")
        elif word in _VERTICAL:
            v = _VERTICAL[word]
            h = None
            for k in (i + 1, i + 2):
                if k < n and tokens[k] in _HORIZONTAL and (k == i + 1 or tokens[i + 1] in ("-", "and")):
                    h = _HORIZONTAL[tokens[k]] if k == i + 1 else None
                    break
            if h is not None:
                cells.add(f"{v}_{h}")
                used.add(i + 1)
            else:
                cells.update(f"{v}{s}" for s in ("_left", "", "_right"))
        elif word in _HORIZONTAL:
            prev = tokens[i - 1] if i > 0 else ""
            if prev in _VERTICAL:
                continue
            if word == "right" and prev in ("the", "on", "to") and i + 1 < n and tokens[i + 1] == "away":
                continue
            cells.update((f"top_{word}", word, f"bottom_{word}"))
        elif word in _CENTER:
            cells.add("center")
    return tuple(c for c in CELLS if c in cells)


def _fact(tokens: Sequence[str], noun: _Noun, action: str, where: tuple[str, ...]) -> Fact:
    count, quantity = _count(tokens, noun)
    return Fact(noun.cls, action, count, where, noun.word, quantity)


def _clause_facts(clause: list[str]) -> list[Fact]:
    where = _where(clause)
    verbs = [i for i in range(len(clause)) if _is_verb(clause, i)]
    if not verbs:
        return []
    facts: list[Fact] = []
    first = verbs[0]
    verb = clause[first]
    subjects = _nouns(clause, 0, first, skip_locations=True)
    if not subjects:
        unknown = _unknown_subject(clause, 0, first)
        subjects = [unknown] if unknown else []
    after_stop = verbs[1] if len(verbs) > 1 and clause[verbs[1]] not in ("by",) else len(clause)
    if verb in _REPLACE_ACTIVE or verb in _BECOME or _developed_into(clause, first):
        passive = first > 0 and clause[first - 1] in _AUX
        rest = clause[first + 1 :]
        if verb in _REPLACE_ACTIVE and passive and "by" in rest:
            # "Y is replaced by X": Y disappeared, X appeared
            by = first + 1 + rest.index("by")
            new = _nouns(clause, by + 1, len(clause), skip_locations=True)
            old = subjects
        elif verb in _REPLACE_ACTIVE:
            # "X replaces Y" / "X is built replacing Y"
            new = subjects
            old = _nouns(clause, first + 1, len(clause), skip_locations=True)
        else:
            # "Y becomes X", "Y is turned into X"
            start = first + 1
            for particle in ("into", "as", "to"):
                if particle in clause[first + 1 : first + 3]:
                    start = clause.index(particle, first + 1) + 1
                    break
            old = subjects
            new = _nouns(clause, start, len(clause), skip_locations=True)
        new = new + _pronouns(clause, first + 1, old)
        facts.extend(_fact(clause, n, "disappeared", where) for n in old)
        facts.extend(_fact(clause, n, "appeared", where) for n in new)
    else:
        action = _action(clause, first)
        filling = _with_objects(clause, first + 1, after_stop)
        facts.extend(_fact(clause, n, _fill_action(verb, n, filling) or action, where) for n in subjects)
        facts.extend(_fact(clause, n, action, where) for n in filling)
        if action == "appeared":
            facts.extend(_fact(clause, n, "disappeared", where) for n in _in_place_of(clause, first + 1))
    # a later verb in the same clause ("a road is built with houses built around", "houses are built replacing trees")
    if len(verbs) > 1:
        later = verbs[1]
        if clause[later] in _REPLACE_ACTIVE and clause[later - 1] not in _AUX:
            old = _nouns(clause, later + 1, len(clause), skip_locations=True)
            facts.extend(_fact(clause, n, "disappeared", where) for n in old)
        elif clause[later] not in _REPLACE_ACTIVE and clause[later] not in _BECOME:
            between = _nouns(clause, first + 1, later, skip_locations=True)
            seen = {f.word for f in facts}
            action = _action(clause, later)
            facts.extend(_fact(clause, n, action, where) for n in between if n.word not in seen)
    return facts


def _developed_into(clause: Sequence[str], i: int) -> bool:
    """ "the pasture is developed into / as houses": a replacement, not a plain "developed"."""
    return clause[i] == "developed" and any(p in clause[i + 1 : i + 3] for p in ("into", "as"))


def _in_place_of(clause: Sequence[str], start: int) -> list[_Noun]:
    """ "... appears in place of many trees": what was there before disappeared."""
    for i in range(start, len(clause) - 2):
        if clause[i : i + 3] == ["in", "place", "of"]:
            return _nouns(clause, i + 3, len(clause), skip_locations=False)
    return []


def _pronouns(clause: Sequence[str], start: int, old: Sequence[_Noun]) -> list[_Noun]:
    """ "replaced by a new one": the new object is the old one's class."""
    if not old:
        return []
    for i in range(start, len(clause)):
        if clause[i] in _PRONOUNS and i > 0 and clause[i - 1] not in ("no",):
            return [_Noun(i, i, old[0].cls, old[0].word)]
    return []


def _action(clause: Sequence[str], i: int) -> str:
    word = clause[i]
    if word in _PHRASAL_ACTION and i + 1 < len(clause) and (word, clause[i + 1]) in _PHRASAL:
        return _PHRASAL_ACTION[word]
    if word == "torn":
        return "disappeared"
    return "disappeared" if word in _DISAPPEAR else "appeared"


def _fill_action(verb: str, subject: _Noun, filling: Sequence[_Noun]) -> str | None:
    """ "the pond is filled (with soil)" / "drained": the water disappeared, unless it is filled with water."""
    if verb in _FILL and subject.cls == "water" and not any(n.cls == "water" for n in filling):
        return "disappeared"
    return None


def _with_objects(clause: Sequence[str], start: int, stop: int) -> list[_Noun]:
    """Objects after "with" following the verb ("a road is built with houses on both sides")."""
    for i in range(start, stop):
        if clause[i] == "with":
            return _nouns(clause, i + 1, stop, skip_locations=True)
    return []


def _verbless_facts(tokens: Sequence[str]) -> list[Fact]:
    """A change caption without a change verb: its subject nouns appeared (LEVIR-CC's default meaning)."""
    where = _where(tokens)
    nouns = _nouns(tokens, 0, len(tokens), skip_locations=True)
    return [_fact(tokens, n, "appeared", where) for n in nouns]


def facts_json(facts: Sequence[Fact]) -> str:
    """The ``facts`` field: the facts as compact JSON (a list of objects)."""
    return json.dumps([f.to_dict() for f in facts], separators=(",", ":"))
