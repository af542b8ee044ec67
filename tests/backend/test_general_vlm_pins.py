"""A caller's prompt is the one sent to a general VLM (issue 30): the model's input ids are captured at
``generate`` and decoded. The older test only checked that a prompt was accepted and a caption came back."""

from __future__ import annotations

import numpy as np
import pytest
from ccexpert.engine import CaptionEngine
from ccexpert.general_vlm import DEFAULT_PROMPT
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
