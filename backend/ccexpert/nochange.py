"""The LEVIR-CC no-change phrasings, and the test that tells a no-change caption from a change caption.

Every unchanged LEVIR-CC pair carries exactly these five references, so a model trained on LEVIR-CC (or on
our synthetic set, which reuses them) answers "no change" with one of them. The plugin stores the result
as the ``changed`` field; evaluation uses it for change/no-change accuracy.
"""

from __future__ import annotations

# One copy of the phrasings, in the Qt-free core (the plugin's caption parser needs them too).
from ccexpert_changes.core.lexicon import NO_CHANGE_CAPTIONS, is_no_change, normalise_caption

__all__ = ["NO_CHANGE_CAPTIONS", "is_no_change", "normalise_caption"]
