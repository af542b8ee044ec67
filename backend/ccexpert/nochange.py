"""The LEVIR-CC no-change phrasings, and the test that tells a no-change caption from a change caption.

Every unchanged LEVIR-CC pair carries exactly these five references, so a model trained on LEVIR-CC (or on
our synthetic set, which reuses them) answers "no change" with one of them. The plugin stores the result
as the ``changed`` field; evaluation uses it for change/no-change accuracy.
"""

from __future__ import annotations

NO_CHANGE_CAPTIONS: tuple[str, ...] = (
    "there is no difference",
    "the two scenes seem identical",
    "the scene is the same as before",
    "no change has occurred",
    "almost nothing has changed",
)

_NO_CHANGE_SET = frozenset(NO_CHANGE_CAPTIONS) | {"nothing has changed", "there is no change", "no change"}


def normalise_caption(text: str) -> str:
    """The LEVIR-CC evaluation normalisation: lower-case, drop every '.', collapse whitespace."""
    return " ".join(text.lower().replace(".", " ").split())


def is_no_change(text: str) -> bool:
    """True when ``text`` is a no-change caption (case, periods and spacing ignored)."""
    return normalise_caption(text) in _NO_CHANGE_SET
