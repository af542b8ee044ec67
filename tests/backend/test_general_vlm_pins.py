"""A caller's prompt is the one sent to a general VLM (issue 30): the model's input ids are captured at
``generate`` and decoded. The older test only checked that a prompt was accepted and a caption came back."""

from __future__ import annotations

import numpy as np
import pytest
from ccexpert.engine import CaptionEngine
from ccexpert.general_vlm import DEFAULT_PROMPT, compose_prompt
from general_vlm_helpers import tiny_llava_onevision, tiny_qwen2_5_vl

BUILDERS = {"llava_onevision": tiny_llava_onevision, "qwen2_5_vl": tiny_qwen2_5_vl}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def engine(request, tmp_path_factory):
    folder = BUILDERS[request.param](tmp_path_factory.mktemp(request.param))
    return CaptionEngine.from_pretrained(folder, device="cpu")


def sent_texts(engine, monkeypatch, **kwargs) -> list[str]:
    """Caption two pairs; the texts of the input ids ``generate`` received (image tokens removed)."""
    texts: list[str] = []
    original = engine.model.generate

    def spy(*args, **gen_kwargs):
        for row, mask in zip(gen_kwargs["input_ids"].tolist(), gen_kwargs["attention_mask"].tolist(), strict=True):
            ids = [t for t, m in zip(row, mask, strict=True) if m]
            texts.append(engine.tokenizer.decode(ids).replace(engine.image_token, ""))
        return original(*args, **gen_kwargs)

    monkeypatch.setattr(engine.model, "generate", spy)
    rng = np.random.default_rng(3)
    pairs = [tuple(rng.integers(0, 256, (384, 384, 3), dtype=np.uint8) for _ in range(2)) for _ in range(2)]
    engine.caption(pairs, max_new_tokens=2, **kwargs)
    return texts


def test_the_callers_prompt_is_what_the_model_reads(engine, monkeypatch):
    """Broken copy: ``_inputs(..., DEFAULT_PROMPT)`` instead of the checked prompt: captions still came back for
    any prompt and the older test passed; this one failed."""
    prompt = "List every new building, road and pond."
    texts = sent_texts(engine, monkeypatch, prompt=f"  {prompt} ")
    assert len(texts) == 2
    for text in texts:
        assert prompt in text and DEFAULT_PROMPT not in text
        assert text.index("user") < text.index(prompt) < text.index("assistant")  # in the user turn, after images


def test_without_a_prompt_the_default_is_sent(engine, monkeypatch):
    texts = sent_texts(engine, monkeypatch)
    assert len(texts) == 2 and all(DEFAULT_PROMPT in text for text in texts)


def test_the_context_note_is_read_before_the_prompt(engine, monkeypatch):
    """Issue 27 item 7: ``Context: <note>.`` and one space, then the prompt, in the user turn after the images.
    Broken copy (``check_prompt(prompt)`` without the note): the note was missing from every text."""
    note = "after the May 2011 tornado"
    assert engine.info().uses_context is True
    texts = sent_texts(engine, monkeypatch, context=f" {note} ")
    assert len(texts) == 2
    for text in texts:
        assert f"Context: {note}. {DEFAULT_PROMPT}" in text
        assert text.index("user") < text.index("Context:") < text.index("assistant")


def test_a_note_with_its_own_stop_and_a_callers_prompt():
    assert compose_prompt("Say what changed.", "After the flood.") == "Context: After the flood. Say what changed."
    assert compose_prompt(None, "   ") == DEFAULT_PROMPT  # whitespace only: no note


def test_a_bad_note_fails_before_the_model_runs(engine, monkeypatch):
    with pytest.raises(ValueError, match="over the limit of 300"):
        sent_texts(engine, monkeypatch, context="x" * 301)
