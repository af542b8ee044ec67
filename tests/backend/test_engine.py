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
        "family": "ccexpert",
        "change_expert": True,
        "gsd_m": None,  # the tiny random model's card names no imagery
        "uses_context": False,  # CCExpert's prompt is fixed: a run's context note is not read
    }


def test_the_model_cards_ground_sample_distance_reaches_info(engine, tmp_path):
    from ccexpert.model_card import read_model_card, write_model_card

    write_model_card(tmp_path, "m", "1", chip_size=384, gsd_m=0.5)
    assert read_model_card(tmp_path)["gsd_m"] == 0.5
    with pytest.raises(ValueError, match="gsd_m must be a positive"):
        write_model_card(tmp_path, "m", "1", gsd_m=0)
    from ccexpert.paths import DEMO_MODEL_DIR

    assert read_model_card(DEMO_MODEL_DIR)["gsd_m"] == 0.5  # the synthetic scenes: 0.5 m pixels, like LEVIR-CC


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


# -- issue 20: confidence from the raw logits, batches of prompts of different lengths ---------------------------------


def _raw_logits(model, input_ids, pixel_values) -> torch.Tensor:
    """Next-token logits after `input_ids` [1, L], by a plain full forward pass (no cache, no logits processor)."""
    with torch.no_grad():
        return model(input_ids=input_ids, pixel_values=pixel_values).logits[0, -1].float()


def test_confidence_uses_raw_logits_when_min_new_tokens_suppresses_im_end(engine):
    """The model wants <|im_end|> at every step, but `min_new_tokens` forbids it for the first steps: the
    confidence must be the model's own probability of the tokens it was made to say (raw logits, where <|im_end|>
    takes almost all the mass), not the probability after masking (where the forced tokens look near certain)."""
    import copy

    model = copy.deepcopy(engine.model)
    eos = engine.processor.im_end_id
    old_head = model.lm_head
    head = torch.nn.Linear(old_head.in_features, old_head.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old_head.weight)  # the tiny model's own, input-dependent preferences ...
        head.bias.zero_()
        head.bias[eos] = 16.0  # ... but <|im_end|> far ahead of them
    model.lm_head = head
    forced = CaptionEngine(model, engine.processor)
    min_new = 4
    result = forced.caption([make_pair(7)], max_new_tokens=10, min_new_tokens=min_new)[0]

    # independent greedy loop: argmax with <|im_end|> masked while fewer than `min_new` tokens exist, scored on the
    # raw logits
    batch = engine.processor([make_pair(7)])
    ids, pixel_values = batch["input_ids"], batch["pixel_values"]
    raw, masked, tokens = [], [], []
    for step in range(10):
        logits = _raw_logits(model, ids, pixel_values)
        assert logits.argmax().item() == eos  # the setup: the model itself would stop at every step
        allowed = logits.clone()
        if step < min_new:
            allowed[eos] = -math.inf
        token = int(allowed.argmax())
        tokens.append(token)
        raw.append(torch.log_softmax(logits, dim=-1)[token].item())
        masked.append(torch.log_softmax(allowed, dim=-1)[token].item())
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        if token == eos:
            break
    assert tokens[-1] == eos and len(tokens) == min_new + 1
    assert result.num_tokens == min_new + 1
    assert result.caption == engine.processor.decode(tokens)
    expected, after_masking = sum(raw) / len(raw), sum(masked) / len(masked)
    assert after_masking - expected > 5  # the two readings differ by orders of magnitude here
    assert math.log(result.confidence) == pytest.approx(expected, abs=1e-3)
    assert result.confidence < 0.01


def test_batch_of_prompts_of_different_lengths_equals_one_by_one(engine):
    """Left padding for real: each pair continues a different assistant prefix, so the prompts differ in length
    and the shorter ones are padded (by 140 tokens: with a few pads, a random tiny model barely notices even a
    dropped attention mask). Greedy tokens and confidences must not depend on the padding."""
    import copy

    processor = copy.copy(engine.processor)
    tokenizer = processor.tokenizer
    processor.caption_ids = lambda prefix: tokenizer.encode(prefix, add_special_tokens=False)  # no <|im_end|>
    long = "There is a new road near the houses and " * 12
    prefixes = ["A", long.strip(), "Many new houses", "The trees on the left are"]
    pairs = [make_pair(21), make_pair(22, 96), make_pair(23, 200), make_pair(24, 50)]

    def generate(indices):
        batch = processor([pairs[i] for i in indices], captions=[prefixes[i] for i in indices])
        batch.pop("labels")
        return batch, engine._generate(batch, max_new_tokens=8, num_beams=1, min_new_tokens=8)

    batch, batched = generate(range(4))
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    assert len(set(lengths)) == 4 and max(lengths) - min(lengths) > 100  # really different lengths ...
    assert (batch["attention_mask"][:, 0] == 0).sum() == 3 and batch["attention_mask"][:, -1].all()  # ... padded left
    single = [generate([i])[1][0] for i in range(4)]
    assert [(r.caption, r.num_tokens) for r in batched] == [(r.caption, r.num_tokens) for r in single]
    for b, s in zip(batched, single, strict=True):
        assert math.isclose(b.confidence, s.confidence, rel_tol=1e-4)  # fp32 noise is ~1e-6
    assert len({r.caption for r in batched}) > 1


# -- captions never glued ------------------------------------------------------------------------------------------


def test_caption_restart_cuts_where_the_model_starts_its_caption_again():
    from ccexpert.engine import caption_restart

    spaced = {10, 11, 12, 13}  # ids of tokens that carry their own leading space
    starts = spaced.__contains__
    # "a" "Ġroad" "Ġis" "Ġbuilt" "a" "Ġroad" ...: the opening again without a space = a second caption glued on
    assert caption_restart([1, 10, 11, 12, 1, 10, 13], starts) == 4
    assert caption_restart([1, 10, 11, 1, 13], starts) == 5  # the first token alone again: a word, not a restart
    assert caption_restart([1, 10, 11, 12, 13], starts) == 5  # nothing repeated
    assert caption_restart([10, 11, 10, 11], starts) == 4  # a spaced opening repeated is a phrase, kept
    assert caption_restart([1, 1, 1, 1, 1], starts) == 5  # a run of one token (a random model) is not an opening


def test_engine_returns_the_first_caption_of_a_glued_pair(engine, monkeypatch, image_pairs):
    """The demo model once answered "... of the scenea road is built ..." on a real pair: the engine ends the
    caption where the model starts the next one and drops the connective left dangling."""
    tokenizer = engine.processor.tokenizer
    first = tokenizer("a road is built in the center of the scene and", add_special_tokens=False)["input_ids"]
    second = tokenizer("a road is built at the top", add_special_tokens=False)["input_ids"]
    assert not engine._starts_word(first[0]) and second[:2] == first[:2]
    real_generate = engine.model.generate

    def glued(**kwargs):
        out = real_generate(**{**kwargs, "max_new_tokens": 1})
        prompt = kwargs["input_ids"]
        fake = torch.tensor([first + second + [engine.processor.im_end_id]] * prompt.shape[0])
        out.sequences = torch.cat((prompt, fake), dim=1)
        out.logits = tuple(
            torch.zeros(prompt.shape[0], engine.model.config.text_config.vocab_size) for _ in range(fake.shape[1])
        )
        return out

    monkeypatch.setattr(engine.model, "generate", glued)
    result = engine.caption(image_pairs[:1])[0]
    assert result.caption == "a road is built in the center of the tile"  # worded for the tile (caption_text)
    assert result.num_tokens == len(first)


def _answer(engine, monkeypatch, text: str, *, end: bool) -> None:
    """The model's generate answers ``text`` (with <|im_end|> when ``end``, else cut as by max_new_tokens)."""
    tokens = engine.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    tokens = tokens + [engine.processor.im_end_id] if end else tokens
    real_generate = engine.model.generate

    def fixed(**kwargs):
        out = real_generate(**{**kwargs, "max_new_tokens": 1})
        prompt = kwargs["input_ids"]
        fake = torch.tensor([tokens] * prompt.shape[0])
        out.sequences = torch.cat((prompt, fake), dim=1)
        out.logits = tuple(
            torch.zeros(prompt.shape[0], engine.model.config.text_config.vocab_size) for _ in range(fake.shape[1])
        )
        return out

    monkeypatch.setattr(engine.model, "generate", fixed)


def test_a_caption_cut_at_the_token_limit_ends_at_its_last_whole_clause(engine, monkeypatch, image_pairs):
    _answer(
        engine, monkeypatch, "a road is built at the top and two houses are built on the left side of the", end=False
    )
    assert engine.caption(image_pairs[:1])[0].caption == "a road is built at the top"
    _answer(engine, monkeypatch, "many houses are built on the left side of the", end=False)
    assert engine.caption(image_pairs[:1])[0].caption == "many houses are built on the left side"
    # a caption that ended by itself keeps its last clause
    _answer(engine, monkeypatch, "a road is built at the top and two houses are built", end=True)
    assert engine.caption(image_pairs[:1])[0].caption == "a road is built at the top and two houses are built"


def test_repeated_clauses_are_dropped_and_positions_are_worded_for_the_tile(engine, monkeypatch, image_pairs):
    _answer(engine, monkeypatch, "a road is built and a house appears and a road is built", end=True)
    result = engine.caption(image_pairs[:1])[0]
    assert result.caption == "a road is built and a house appears"
    _answer(engine, monkeypatch, "a house appears in the corner of the scene", end=True)
    assert engine.caption(image_pairs[:1])[0].caption == "a house appears in the corner of the tile"
    monkeypatch.setattr(engine, "wording", "scene")  # scoring against LEVIR-CC references keeps their wording
    assert engine.caption(image_pairs[:1])[0].caption == "a house appears in the corner of the scene"
    _answer(engine, monkeypatch, "the scene is the same as before", end=True)
    result = engine.caption(image_pairs[:1])[0]
    assert (result.caption, result.changed) == ("the scene is the same as before", False)
