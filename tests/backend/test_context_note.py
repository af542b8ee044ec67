"""The run's context note on the wire (issue 27 item 7): the ``context`` field of ``POST /v1/captions`` (JSON and
multipart) is checked with a clear 422, reaches the engine, is part of each pair's idempotency key, splits device
batches like the caption length does, and ``/v1/info`` says whether the model reads it."""

from __future__ import annotations

import threading

import pytest
import requests
from ccexpert.client import CCExpertClient, ChipPair
from ccexpert.service import Settings, create_app
from ccexpert.service.batching import DynamicBatcher
from ccexpert_changes.core.context import MAX_CONTEXT_CHARS
from service_helpers import EchoEngine, NoteEngine, b64, png_bytes, solid, thread_server

CHIP = 32
NOTE = "after the May 2011 tornado"


@pytest.fixture(scope="module")
def served():
    engine = NoteEngine(chip_size=CHIP)
    with thread_server(create_app(Settings(max_batch=8, max_wait_ms=5), engine)) as url:
        yield url, engine


def _pair(value: int = 10):
    return png_bytes(solid(value, CHIP)), png_bytes(solid(value + 5, CHIP))


def _json(pair_id: str = "p", value: int = 10, **extra) -> dict:
    b, a = _pair(value)
    return {"pairs": [{"id": pair_id, "before": b64(b), "after": b64(a)}], **extra}


def _form(pair_id: str = "p", value: int = 10, notes=()) -> list:
    b, a = _pair(value)
    return [("id", (None, pair_id)), ("before", ("b.png", b)), ("after", ("a.png", a)), *notes]


# -- JSON ----------------------------------------------------------------------------------------------------------


def test_the_note_reaches_the_engine_and_info_says_it_is_read(served):
    url, engine = served
    assert requests.get(url + "/v1/info", timeout=30).json()["uses_context"] is True
    r = requests.post(url + "/v1/captions", json=_json("j1", 40, context=f"  {NOTE}  "), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["caption"].endswith(f"| {NOTE}")  # stripped, as the shared rule says
    r = requests.post(url + "/v1/captions", json=_json("j2", 41, context="  "), timeout=30)
    assert r.json()["results"][0]["caption"].endswith("| None")  # whitespace only: no note


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("x" * 301, "301 characters, over the limit of 300"),
        (5, "context: Input should be a valid string"),
        (["a"], "context: Input should be a valid string"),
        (True, "context: Input should be a valid string"),
        ("line one\nline two", "control character"),
    ],
)
def test_a_bad_note_is_a_clear_422_and_nothing_is_captioned(served, value, says):
    url, engine = served
    before = engine.pairs_seen
    r = requests.post(url + "/v1/captions", json=_json("bad", 50, context=value), timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text
    assert says in r.json()["error"]["message"]
    assert engine.pairs_seen == before


def test_the_longest_note_is_accepted(served):
    url, _ = served
    note = "n" * MAX_CONTEXT_CHARS
    r = requests.post(url + "/v1/captions", json=_json("long", 55, context=note), timeout=30)
    assert r.status_code == 200 and r.json()["results"][0]["caption"].endswith(note)


# -- multipart -----------------------------------------------------------------------------------------------------


def test_multipart_takes_the_note_as_json_does(served):
    url, _ = served
    r = requests.post(url + "/v1/captions", files=_form("m1", 60, [("context", (None, NOTE))]), timeout=30)
    assert r.status_code == 200 and r.json()["results"][0]["caption"].endswith(f"| {NOTE}"), r.text


@pytest.mark.parametrize(
    ("notes", "says"),
    [
        ([("context", (None, "x" * 301))], "301 characters, over the limit of 300"),
        ([("context", (None, "a")), ("context", (None, "b"))], "one plain form field"),
        ([("context", ("note.txt", b"a file"))], "one plain form field"),
        ([("context", (None, "tab\there"))], "control character"),
    ],
)
def test_a_bad_multipart_note_is_a_clear_422(served, notes, says):
    url, engine = served
    before = engine.pairs_seen
    r = requests.post(url + "/v1/captions", files=_form("mbad", 61, notes), timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text
    assert says in r.json()["error"]["message"] and engine.pairs_seen == before


# -- idempotency ---------------------------------------------------------------------------------------------------


def test_a_cached_answer_for_another_note_is_never_reused(served):
    """Broken copy (the key without the note: ``(key, id, digest, tokens)``): the second request was answered from
    the cache with the first note's caption and the engine saw 1 pair, not 2."""
    url, engine = served
    before = engine.pairs_seen
    first = requests.post(url + "/v1/captions", json=_json("same", 70, context="after the flood"), timeout=30).json()
    other = requests.post(url + "/v1/captions", json=_json("same", 70, context="after the fire"), timeout=30).json()
    again = requests.post(url + "/v1/captions", json=_json("same", 70, context="after the fire"), timeout=30).json()
    assert first["results"][0]["caption"].endswith("after the flood")
    assert other["results"][0]["caption"].endswith("after the fire")
    assert again == other and engine.pairs_seen == before + 2  # the resend with the same note: from the cache


# -- batching ------------------------------------------------------------------------------------------------------


def test_pairs_of_different_notes_never_share_an_engine_call():
    """Broken copy (grouping on the caption length only): pairs of three notes went into one engine call, all
    captioned with the first one's note."""
    engine = NoteEngine(chip_size=8)
    gate = threading.Event()
    original = engine.caption

    def held(pairs, max_new_tokens=64, **kwargs):
        gate.wait(10)  # the first batch holds the worker until every client has queued
        return original(pairs, max_new_tokens, **kwargs)

    engine.caption = held  # type: ignore[method-assign]
    batcher = DynamicBatcher(engine, max_batch=8, max_wait_s=0.0).start()
    notes = {"a": "n0", "b": "after the flood", "c": None, "d": "after the fire"}
    try:
        futures = {
            client: batcher.submit(client, [(solid(i, 8), solid(i + 1, 8))] * 2, context=note)
            for i, (client, note) in enumerate(notes.items())
        }
        gate.set()
        captions = {client: [f.result(10).result.caption for f in fs] for client, fs in futures.items()}
    finally:
        batcher.stop()
    assert sorted(engine.calls, key=str) == sorted([(2, note) for note in notes.values()], key=str)
    for client, note in notes.items():
        assert all(c.endswith(f"| {note}") for c in captions[client]), captions


def test_an_engine_without_notes_is_called_as_before():
    """No note: the engine gets no ``context`` keyword (stubs and engines written before notes still work)."""
    engine = EchoEngine(chip_size=8)  # caption(pairs, max_new_tokens) only
    batcher = DynamicBatcher(engine, max_batch=4, max_wait_s=0.0).start()
    try:
        assert batcher.submit("a", [(solid(1, 8), solid(2, 8))])[0].result(10).result.caption
    finally:
        batcher.stop()


def test_a_preparing_engine_gets_the_note_in_prepare():
    """The prefetch path (CaptionEngine): ``prepare`` is where the prompt is built, so the note goes there."""
    from ccexpert.standin import standin_engine

    engine = standin_engine(0.0, image_size=32, max_batch=4)
    seen: list = []
    original = engine.prepare

    def prepare(pairs, first_index=0, **kwargs):
        seen.append(kwargs)
        return original(pairs, first_index, **kwargs)

    engine.prepare = prepare  # type: ignore[method-assign]
    batcher = DynamicBatcher(engine, max_batch=4, max_wait_s=0.0).start()
    try:
        assert batcher.prefetch == 1
        pair = (solid(1, 32), solid(2, 32))
        batcher.submit("a", [pair], context=NOTE)[0].result(30)
        batcher.submit("a", [pair])[0].result(30)
    finally:
        batcher.stop()
    assert seen == [{"context": NOTE}, {}]


# -- /v1/info and the client ----------------------------------------------------------------------------------------


def test_ccexpert_says_it_ignores_the_note():
    from ccexpert.standin import standin_engine

    engine = standin_engine(0.0, image_size=32, max_batch=4)
    assert engine.info().uses_context is False
    with thread_server(create_app(Settings(), engine)) as url:
        assert requests.get(url + "/v1/info", timeout=30).json()["uses_context"] is False


def test_the_backend_client_sends_the_note_only_when_given(served):
    url, _ = served
    client = CCExpertClient(url)
    pair = ChipPair("c1", solid(80, CHIP), solid(85, CHIP))
    assert client.caption([pair], context=NOTE)[0]["caption"].endswith(f"| {NOTE}")
    assert client.caption([ChipPair("c2", solid(81, CHIP), solid(86, CHIP))])[0]["caption"].endswith("| None")


def test_ccexpert_captions_the_same_with_or_without_a_note(tiny_model_dir, monkeypatch):
    """CCExpert's prompt is fixed: the note changes neither what the model reads nor the caption."""
    from ccexpert.engine import CaptionEngine

    engine = CaptionEngine.from_pretrained(tiny_model_dir, device="cpu", dtype="fp32", max_batch=2)
    inputs: list = []
    original = engine.model.generate

    def spy(*args, **kwargs):
        inputs.append(kwargs["input_ids"].tolist())
        return original(*args, **kwargs)

    monkeypatch.setattr(engine.model, "generate", spy)
    pairs = [(solid(30, 384), solid(90, 384))]
    plain = engine.caption(pairs, max_new_tokens=4)
    noted = engine.caption(pairs, max_new_tokens=4, context=NOTE)
    assert plain == noted and inputs[0] == inputs[1] and engine.info().uses_context is False
