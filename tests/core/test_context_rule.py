"""The context note's one rule (issue 27 item 7, ``core.context``), shared by the API, ``describe --context`` and
the plugin's CONTEXT, and the request budget it needs (``core.driver.ENVELOPE_BYTES``)."""

from __future__ import annotations

import json

import pytest
from ccexpert_changes.core.context import MAX_CONTEXT_CHARS, check_context
from ccexpert_changes.core.driver import ENVELOPE_BYTES

NOTE = "after the May 2011 tornado"


def test_none_blank_and_surrounding_whitespace():
    assert check_context(None) is None and check_context("   ") is None and check_context("") is None
    assert check_context(f"  {NOTE} ") == NOTE


def test_the_limit_counts_characters_once_stripped():
    assert check_context("é" * MAX_CONTEXT_CHARS) == "é" * MAX_CONTEXT_CHARS  # characters, not bytes
    assert check_context(" " + "x" * MAX_CONTEXT_CHARS + "\n") == "x" * MAX_CONTEXT_CHARS
    with pytest.raises(ValueError, match="301 characters, over the limit of 300"):
        check_context("x" * 301)


@pytest.mark.parametrize("bad", [5, 1.5, True, ["a"], b"bytes"])
def test_only_a_string_is_a_note(bad):
    with pytest.raises(ValueError, match="must be a string"):
        check_context(bad)


@pytest.mark.parametrize(
    "text", ["after the\ntornado", "tab\there", "bell\x07", "del\x7f", "line\u2028separator", "para\u2029graph"]
)
def test_a_control_character_inside_is_refused_with_its_place(text):
    with pytest.raises(ValueError, match=r"control character .* at \d+\): write it on one line"):
        check_context(text)


@pytest.mark.parametrize("char", ["x", "é", "\u00a0", "😀", '"', "\\"])
def test_the_request_envelope_holds_the_longest_note_as_json_writes_it(char):
    """Both clients send JSON with ensure_ascii (``\\uXXXX``, a surrogate pair for 😀): the longest note must fit
    in what ``settings_from_info`` keeps beside the pairs, with the 1,024 bytes of the rest of the envelope."""
    note = check_context(char * MAX_CONTEXT_CHARS)
    field = len(", " + json.dumps("context") + ": " + json.dumps(note))
    assert 1024 + field <= ENVELOPE_BYTES, (char, field)
