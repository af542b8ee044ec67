"""Issue 30: a replica's ``@serve.batch`` may merge calls of different caption lengths (``max_new_tokens``):
``caption_grouped`` runs the engine once per length and gives each result back to its own call."""

from __future__ import annotations

import pytest

pytest.importorskip("ray.serve")

from ccexpert.ray_deployments import caption_grouped


def fake_engine(calls: list):
    """An engine whose result names the pair and the length it was made with; records its calls."""

    def run(pairs: list, max_new_tokens: int) -> list:
        calls.append((list(pairs), max_new_tokens))
        return [f"{pair}@{max_new_tokens}" for pair in pairs]

    return run


def test_each_result_goes_back_to_its_own_call():
    calls: list = []
    items = [("a", 5), ("b", 9), ("c", 5), ("d", 9), ("e", 9), ("f", 64)]
    assert caption_grouped(items, fake_engine(calls)) == ["a@5", "b@9", "c@5", "d@9", "e@9", "f@64"]
    # one engine call per length, in the order the lengths first appear, pairs in their order within it
    assert calls == [(["a", "c"], 5), (["b", "d", "e"], 9), (["f"], 64)]


def test_one_length_is_one_engine_call():
    calls: list = []
    assert caption_grouped([("a", 8), ("b", 8)], fake_engine(calls)) == ["a@8", "b@8"]
    assert calls == [(["a", "b"], 8)]


def test_an_engine_that_loses_a_result_fails_the_batch():
    def short(pairs: list, max_new_tokens: int) -> list:
        return [f"{p}@{max_new_tokens}" for p in pairs][:-1]

    with pytest.raises(RuntimeError, match="0 results for 1 pairs"):
        caption_grouped([("a", 5), ("b", 9), ("c", 9)], short)


def test_each_context_note_is_its_own_engine_call():
    """Issue 27 item 7: calls of one length but different notes are not merged; each note reaches its call."""
    calls: list = []

    def run(pairs: list, max_new_tokens: int, context: str | None) -> list:
        calls.append((list(pairs), max_new_tokens, context))
        return [f"{pair}@{max_new_tokens}/{context}" for pair in pairs]

    items = [("a", 8, None), ("b", 8, "flood"), ("c", 8, None), ("d", 8, "fire"), ("e", 8, "flood")]
    assert caption_grouped(items, run) == ["a@8/None", "b@8/flood", "c@8/None", "d@8/fire", "e@8/flood"]
    assert calls == [(["a", "c"], 8, None), (["b", "e"], 8, "flood"), (["d"], 8, "fire")]
