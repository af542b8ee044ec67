"""CaptionEngine: batched greedy generation equals one-by-one, confidence, stopping, info, loading errors."""

from __future__ import annotations

import math

import pytest
import torch
from ccexpert.checkpoints import CheckpointError
from ccexpert.engine import CaptionEngine, CaptionResult
from conftest import make_pair


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return CaptionEngine.from_pretrained(tiny_model_dir, device="cpu", dtype="fp32", max_batch=8)


def test_batch_equals_one_by_one(engine, image_pairs):
    batched = engine.caption(image_pairs, max_new_tokens=12)
    single = [engine.caption([pair], max_new_tokens=12)[0] for pair in image_pairs]
    assert [r.caption for r in batched] == [r.caption for r in single]
    assert [r.num_tokens for r in batched] == [r.num_tokens for r in single]
    for b, s in zip(batched, single, strict=True):
        assert math.isclose(b.confidence, s.confidence, rel_tol=1e-4)
    assert len({r.caption for r in batched}) > 1  # different pairs, different outputs: the images matter


def test_chunks_smaller_than_the_input_keep_order(tiny_model_dir, image_pairs, engine):
    small = CaptionEngine(engine.model, engine.processor, max_batch=3)
    chunked, whole = small.caption(image_pairs, max_new_tokens=6), engine.caption(image_pairs, max_new_tokens=6)
    assert [(r.caption, r.num_tokens) for r in chunked] == [(r.caption, r.num_tokens) for r in whole]
    assert all(math.isclose(a.confidence, b.confidence, rel_tol=1e-4) for a, b in zip(chunked, whole, strict=True))


def test_confidence_is_exp_mean_token_logprob(engine):
    pair = make_pair(11)
    result = engine.caption([pair], max_new_tokens=8)[0]
    assert isinstance(result, CaptionResult) and 0.0 <= result.confidence <= 1.0
    assert 1 <= result.num_tokens <= 8
    # recompute by teacher forcing the greedy tokens through a plain forward pass
    batch = engine.processor([pair])
    prompt_len = batch["input_ids"].shape[1]
    with torch.no_grad():
        generated = engine.model.generate(**batch, max_new_tokens=8, do_sample=False)[0, prompt_len:]
        generated = generated[: result.num_tokens]
        ids = torch.cat([batch["input_ids"][0], generated])[None]
        logits = engine.model(input_ids=ids, pixel_values=batch["pixel_values"]).logits[0]
    logprobs = torch.log_softmax(logits[prompt_len - 1 : -1].float(), dim=-1)
    mean = logprobs.gather(1, generated[:, None]).mean().item()
    assert math.isclose(result.confidence, math.exp(mean), rel_tol=1e-4)
    assert result.caption == engine.processor.decode(generated.tolist())


def _force_next_token(engine, token_id: int, runner_up: int | None = None) -> CaptionEngine:
    """A copy of the engine whose LM head always prefers `token_id` strongly (then `runner_up`)."""
    import copy

    model = copy.deepcopy(engine.model)
    hidden = model.config.text_config.hidden_size
    head = torch.nn.Linear(hidden, model.config.text_config.vocab_size, bias=True)
    torch.nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.zero_()
        head.bias[token_id] = 20.0
        if runner_up is not None:
            head.bias[runner_up] = 10.0
    model.lm_head = head
    return CaptionEngine(model, engine.processor)


def test_stops_at_im_end_and_never_returns_an_empty_caption(engine):
    """A model that wants to end at once (the demo model on a chip of mostly nodata fill did) still says something:
    <|im_end|> is suppressed for the first token only, then generation stops at it."""
    road = engine.processor.tokenizer.convert_tokens_to_ids("Ġroad")
    forced = _force_next_token(engine, engine.processor.im_end_id, runner_up=road)
    result = forced.caption([make_pair(1)], max_new_tokens=10)[0]
    assert result.num_tokens == 2 and result.caption == "road"


def test_max_new_tokens_caps_generation_and_captions_are_clean(engine):
    word = engine.processor.tokenizer.convert_tokens_to_ids("Ġroad")
    forced = _force_next_token(engine, word)
    results = forced.caption([make_pair(1), make_pair(2)], max_new_tokens=5)
    assert [r.num_tokens for r in results] == [5, 5]
    assert results[0].caption == "road road road road road"  # stripped, no special tokens
    assert results[0].changed is True
    nochange = engine.processor.tokenizer.encode("There is no difference.", add_special_tokens=False)
    assert engine.processor.decode([*nochange, engine.processor.im_end_id]) == "There is no difference."


def test_changed_flag_uses_the_no_change_phrasings(engine):
    from ccexpert.nochange import is_no_change

    for result in engine.caption([make_pair(1), make_pair(2)], max_new_tokens=6):
        assert result.changed is (not is_no_change(result.caption))


def test_beam_search(engine):
    results = engine.caption([make_pair(1), make_pair(2)], max_new_tokens=6, num_beams=3)
    assert len(results) == 2
    assert all(0.0 <= r.confidence <= 1.0 and 1 <= r.num_tokens <= 6 for r in results)
    road = engine.processor.tokenizer.convert_tokens_to_ids("Ġroad")
    forced = _force_next_token(engine, engine.processor.im_end_id, runner_up=road)
    beam = forced.caption([make_pair(1)], num_beams=2)[0]
    assert beam.num_tokens == 2 and beam.caption == "road"  # never empty, then stops at <|im_end|>


def test_bad_input_fails_before_any_generation(engine, monkeypatch):
    calls = []
    monkeypatch.setattr(engine.model, "generate", lambda *a, **k: calls.append(1))
    pairs = [make_pair(i) for i in range(10)] + [(make_pair(1)[0], None)]
    with pytest.raises(ValueError, match="pair 10, after image"):  # numbered in the caller's list, not per chunk
        engine.caption(pairs)
    assert calls == []
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.caption([make_pair(1)], max_new_tokens=0)


def test_info(engine):
    info = engine.info()
    assert info == {
        "model_name": "ccexpert-tiny-random",
        "model_version": "tiny-seed0",
        "chip_size": 384,
        "bands": 3,
        "device": "cpu",
        "dtype": "float32",
        "max_batch": 8,
        "demo": True,
    }


def test_default_model_comes_from_the_environment(tiny_model_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("CCEXPERT_MODEL", str(tiny_model_dir))
    assert CaptionEngine.from_pretrained(None, device="cpu").info()["model_name"] == "ccexpert-tiny-random"
    monkeypatch.setenv("CCEXPERT_MODEL", str(tmp_path / "nothing"))
    with pytest.raises(CheckpointError, match=r"no model at .*nothing; pass --model"):
        CaptionEngine.from_pretrained(None)


def test_chip_size_comes_from_the_model_card(tiny_model_dir, tmp_path):
    """Clients cut the chip the model card names (the demo model reads 384-px chips at 128 px); without it, the
    model's input size; a bad value is refused when the model loads."""
    import json
    import shutil

    assert CaptionEngine.from_pretrained(tiny_model_dir, device="cpu").info()["chip_size"] == 384
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    card = json.loads((folder / "model_card.json").read_text())
    (folder / "model_card.json").write_text(json.dumps({**card, "chip_size": 512}))
    assert CaptionEngine.from_pretrained(folder, device="cpu").info()["chip_size"] == 512
    (folder / "model_card.json").write_text(json.dumps({**card, "chip_size": "big"}))
    with pytest.raises(ValueError, match="chip_size must be a positive integer, got 'big'"):
        CaptionEngine.from_pretrained(folder, device="cpu")
