"""Cheap preparation (issue 29): cached prompt rows, uint8 pixels normalised on the device, no resize of chips
already at the model's size, and chunk k+1 prepared while chunk k generates. Outputs must equal the old path
(the processor's float batch, chunk by chunk, in one thread) exactly: captions and confidences."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from ccexpert.engine import CaptionEngine
from ccexpert.general_vlm import DEFAULT_PROMPT, GeneralVLMEngine
from ccexpert.prefetch import WORKERS_ENV, default_workers, prefetched
from ccexpert.processing_ccexpert import normalize_pixels
from general_vlm_helpers import tiny_llava_onevision, tiny_qwen2_5_vl

DEMO = Path(__file__).resolve().parents[2] / "backend" / "ccexpert" / "demo_model"
BUILDERS = {"llava_onevision": tiny_llava_onevision, "qwen2_5_vl": tiny_qwen2_5_vl}


def _pairs(sizes, seed: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Textured pairs (smooth fields + noise, a changed block): chips at the model's size and others resized."""
    rng = np.random.default_rng(seed)
    pairs = []
    for size in sizes:
        ramp = np.linspace(0, 200, size, dtype=np.float32)
        base = (ramp[:, None, None] + ramp[None, :, None] * 0.3 + rng.normal(0, 20, (size, size, 3))).clip(0, 255)
        before = base.astype(np.uint8)
        after = before.copy()
        after[size // 4 : size // 2, size // 3 : size // 2] = rng.integers(0, 256, 3, dtype=np.uint8)
        pairs.append((before, after))
    return pairs


def _old_ccexpert(engine: CaptionEngine, pairs, max_new_tokens: int):
    """Today's path before issue 29: the processor's float32 batch per chunk, serially."""
    out = []
    for start in range(0, len(pairs), engine.max_batch):
        batch = engine.processor(pairs[start : start + engine.max_batch], first_index=start)
        assert batch["pixel_values"].dtype == torch.float32
        out.extend(engine._generate(batch, max_new_tokens, 1, 0))
    return out


@pytest.fixture(scope="module")
def demo():
    return CaptionEngine.from_pretrained(DEMO, device="cpu", dtype="fp32", max_batch=3)


def test_prepared_batch_is_bit_for_bit_the_processors_batch(demo):
    size = demo.processor.image_size  # 128 for the demo model
    pairs = _pairs([size, 64, size, 500])  # two at the model's size (no resize), two resized
    old, new = demo.processor(pairs), demo.prepare(pairs)
    assert new["pixel_values"].dtype == torch.uint8 and new["pixel_values"].shape == (4, 2, 3, size, size)
    assert torch.equal(old["input_ids"], new["input_ids"]) and torch.equal(old["attention_mask"], new["attention_mask"])
    for dtype in (torch.float32, torch.bfloat16):
        assert torch.equal(old["pixel_values"].to(dtype), normalize_pixels(new["pixel_values"], dtype))


def test_demo_model_captions_equal_the_old_path_batched_and_one_by_one(demo):
    size = demo.processor.image_size
    pairs = _pairs([size, size, 96, size, 384, size, 200])  # 7 pairs, max_batch 3: three chunks, prefetch runs
    old = _old_ccexpert(demo, pairs, 10)
    batched = demo.caption(pairs, max_new_tokens=10)
    alone = [demo.caption([pair], max_new_tokens=10)[0] for pair in pairs]
    assert [(r.caption, r.confidence, r.num_tokens) for r in batched] == [
        (r.caption, r.confidence, r.num_tokens) for r in old
    ]
    assert [(r.caption, r.num_tokens) for r in alone] == [(r.caption, r.num_tokens) for r in old]
    assert [r.confidence for r in alone] == pytest.approx([r.confidence for r in old], rel=1e-5)
    assert len({r.caption for r in old}) > 1  # the images matter


def test_a_bad_image_in_a_later_chunk_fails_before_any_generation(demo, monkeypatch):
    calls = []
    monkeypatch.setattr(demo.model, "generate", lambda *a, **k: calls.append(1))
    pairs = _pairs([128] * 5)
    pairs[4] = (pairs[4][0], np.zeros((128, 128), np.uint8))
    with pytest.raises(ValueError, match="pair 4, after image"):
        demo.caption(pairs)
    assert calls == []


def test_prompt_rows_are_tokenised_once(demo, monkeypatch):
    demo.processor.prompt_batch(1)
    monkeypatch.setattr(demo.processor.tokenizer, "encode", lambda *a, **k: pytest.fail("re-tokenised"))
    rows = demo.processor.prompt_batch(4)
    assert rows["input_ids"].shape == (4, len(demo.processor.prompt_ids))
    assert rows["attention_mask"].all()


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def general(request, tmp_path_factory) -> GeneralVLMEngine:
    folder = BUILDERS[request.param](tmp_path_factory.mktemp(request.param))
    engine = CaptionEngine.from_pretrained(folder, device="cpu", max_batch=2)
    assert isinstance(engine, GeneralVLMEngine)
    return engine


def test_general_vlm_captions_equal_the_old_serial_path_batched_and_one_by_one(general):
    pairs = _pairs([384, 384, 384, 200, 384])  # 5 pairs, max_batch 2: three chunks through the prefetch
    images = [(general._image(b, "b"), general._image(a, "a")) for b, a in pairs]
    old = []
    for start in range(0, len(images), general.max_batch):
        old.extend(general._generate(general._inputs(images[start : start + 2], DEFAULT_PROMPT), 6, 1, 0))
    batched = general.caption(pairs, max_new_tokens=6)
    alone = [general.caption([pair], max_new_tokens=6)[0] for pair in pairs]
    assert [(r.caption, r.confidence, r.num_tokens) for r in batched] == [
        (r.caption, r.confidence, r.num_tokens) for r in old
    ]
    assert [r.caption for r in alone] == [r.caption for r in old]
    assert [r.confidence for r in alone] == pytest.approx([r.confidence for r in old], rel=1e-3)


# -- the prefetch itself -------------------------------------------------------------------------------------------


def test_prefetch_keeps_order_and_runs_at_most_depth_ahead():
    started: list[int] = []
    consumed = 0
    lock = threading.Lock()

    def prepare(item: int) -> int:
        with lock:
            started.append(item)
            assert item - consumed <= 2, f"item {item} prepared while only {consumed} were consumed"
        return item * 10

    out = []
    for value in prefetched(range(8), prepare, depth=2):
        out.append(value)
        with lock:
            consumed += 1
    assert out == [i * 10 for i in range(8)] and started == list(range(8))


def test_prefetch_overlaps_preparation_with_the_consumer():
    """Item 1 is prepared while the consumer still holds item 0 (an event, no sleeps)."""
    second_started = threading.Event()

    def prepare(item: int) -> int:
        if item == 1:
            second_started.set()
        return item

    iterator = prefetched(range(3), prepare, depth=1)
    assert next(iterator) == 0
    assert second_started.wait(10), "batch 1 was not prepared while batch 0 was being consumed"
    assert list(iterator) == [1, 2]


def test_prefetch_raises_a_failed_item_in_its_turn_and_stops():
    seen = []

    def prepare(item: int) -> int:
        if item == 2:
            raise ValueError("pair 2 is broken")
        return item

    iterator = prefetched(range(6), prepare, depth=1)
    with pytest.raises(ValueError, match="pair 2 is broken"):
        for value in iterator:
            seen.append(value)
    assert seen == [0, 1]
    with pytest.raises(ValueError, match="depth"):
        list(prefetched([1], prepare, depth=0))


def test_worker_count_is_configurable_and_checked(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert default_workers() == 3
    monkeypatch.delenv(WORKERS_ENV)
    assert 1 <= default_workers() <= 8
    for bad in ("0", "-2", "many"):
        monkeypatch.setenv(WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=WORKERS_ENV):
            default_workers()


def test_a_bad_worker_setting_or_prefetch_fails_when_the_engine_is_made(demo, monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "many")
    with pytest.raises(ValueError, match=WORKERS_ENV):
        CaptionEngine(demo.model, demo.processor)
    monkeypatch.delenv(WORKERS_ENV)
    with pytest.raises(ValueError, match="prefetch must be >= 0"):
        CaptionEngine(demo.model, demo.processor, prefetch=-1)
    serial = CaptionEngine(demo.model, demo.processor, max_batch=2, prefetch=0)
    pairs = _pairs([128] * 3)
    assert [r.caption for r in serial.caption(pairs, max_new_tokens=4)] == [
        r.caption for r in demo.caption(pairs, max_new_tokens=4)
    ]
