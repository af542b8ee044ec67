"""The run's context note (issue 27 item 7): an optional line of at most :data:`MAX_CONTEXT_CHARS` characters the
analyst gives a run ("after the May 2011 tornado"). General VLMs read it in their prompt (RSCC: disaster context
lifts their captions); CCExpert's prompt is fixed and ignores it. One rule for every way in (the caption request,
``ccexpert describe --context``, the plugin's CONTEXT parameter), so a note one accepts the others accept too.
"""

from __future__ import annotations

import unicodedata

MAX_CONTEXT_CHARS = 300
_NOT_ON_ONE_LINE = ("Cc", "Zl", "Zp")  # control characters, line and paragraph separators


def check_context(value: object) -> str | None:
    """The note to use: None for none (None, or only whitespace), else the text stripped of surrounding
    whitespace. ValueError (a message an analyst can act on) when it is not a string, is longer than
    MAX_CONTEXT_CHARS once stripped, or holds a control character or line break (tab, newline, U+2028...: a note
    is one line of a prompt and of the report)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"context must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    if len(text) > MAX_CONTEXT_CHARS:
        raise ValueError(f"context is {len(text)} characters, over the limit of {MAX_CONTEXT_CHARS}")
    for index, char in enumerate(text):
        if unicodedata.category(char) in _NOT_ON_ONE_LINE:
            raise ValueError(f"context holds a control character ({char!r} at {index}): write it on one line")
    return text


__all__ = ["MAX_CONTEXT_CHARS", "check_context"]
