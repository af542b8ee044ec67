"""Tidying a generated caption before anyone reads it (issue 25, finding 12).

Three faults of raw model output that an analyst meets in the layer:
- a caption cut at the token limit ends mid-phrase ("... on the left side of the"): it is trimmed to its last
  whole clause (or, with a single clause, its trailing articles and prepositions are dropped);
- a clause repeated word for word ("a road is built and a road is built") is kept once;
- positions say "of the scene" although the caption describes one tile of a larger raster: with ``wording="tile"``
  they say "of the tile". Scoring against LEVIR-CC references (which say "scene") uses ``wording="scene"``.
A no-change caption is left exactly as it is (the no-change test and the references match its wording), and so is
text without a letter.
"""

from __future__ import annotations

import re

from ccexpert.nochange import is_no_change

WORDINGS = ("tile", "scene")
_BREAK = re.compile(r"\s*[,;]\s*|\s+(?:and|while|but)\s+")
_DANGLING_WORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "by",
        "with",
        "and",
        "or",
        "but",
        "while",
        "along",
        "near",
        "beside",
        "around",
        "across",
        "into",
        "from",
        "its",
        "their",
        "which",
        "that",
        "is",
        "are",
        "was",
        "were",
        "has",
        "have",
        "been",
    }
)
_SCENE = re.compile(r"\b(of|in|from|on|at|across|to|around|near) the (scene|image|picture)\b")


def trim_cut(caption: str) -> str:
    """A caption the token limit cut: up to its last clause break, else without its dangling last words."""
    breaks = list(_BREAK.finditer(caption))
    if breaks:
        trimmed = caption[: breaks[-1].start()].rstrip(" ,;")
        if trimmed:
            return trimmed
    words = caption.split()
    while len(words) > 1 and words[-1].lower().strip(".,;") in _DANGLING_WORDS:
        words.pop()
    return " ".join(words)


def drop_repeated_clauses(caption: str) -> str:
    """Each clause once: a later clause equal (case and spacing aside) to an earlier one goes with its break."""
    parts = _BREAK.split(caption)
    seps = [m.group(0) for m in _BREAK.finditer(caption)]
    seen = {" ".join(parts[0].lower().split()).strip(".")}
    out = parts[0]
    for sep, part in zip(seps, parts[1:], strict=True):
        key = " ".join(part.lower().split()).strip(".")
        if key in seen and any(c.isalpha() for c in key):  # clauses of words only, never punctuation runs
            continue  # the break before a dropped clause goes with it
        seen.add(key)
        out += sep + part
    return out


def tidy_caption(caption: str, *, cut: bool = False, wording: str = "tile") -> str:
    """The caption as the layer shows it: trimmed when ``cut`` (the token limit ended it), clauses once, positions
    worded for the tile (``wording="tile"``) or left as the model wrote them (``"scene"``)."""
    if wording not in WORDINGS:
        raise ValueError(f"wording must be one of {WORDINGS}, got {wording!r}")
    text = caption.strip()
    if is_no_change(text) or not any(c.isalpha() for c in text):
        return caption  # a no-change phrasing stays verbatim; text without words (a random model's) has no clauses
    if cut:
        text = trim_cut(text)
    text = drop_repeated_clauses(text)
    if wording == "tile":
        text = _SCENE.sub(r"\1 the tile", text)
    return text or caption
