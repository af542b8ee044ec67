"""Collator + processor label positions (ccexpert_model.md §3.4) on the tiny tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ccexpert_training.collator import GenerateCollator, TrainCollator
from PIL import Image

IGNORE = -100


@pytest.fixture(scope="module")
def processor():
    from ccexpert.presets import build_tiny_tokenizer
    from ccexpert.processing_ccexpert import CCExpertProcessor

    processor = CCExpertProcessor(build_tiny_tokenizer())
    processor.padding_side = "right"
    return processor


def _items():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
    return [
        {
            "uid": "a",
            "before": image,
            "after": image,
            "caption": "A road is built at the top of the scene.",
            "refs": ["r"],
        },
        {"uid": "b", "before": image, "after": image, "caption": "There is no difference.", "refs": ["r"]},
    ]


def test_label_positions(processor):
    tok = processor.tokenizer
    batch = TrainCollator(processor)(_items())
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert batch["pixel_values"].shape == (2, 2, 3, 384, 384)
    im_start, im_end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    newline = tok.encode("\n", add_special_tokens=False)[0]
    image = tok.convert_tokens_to_ids("<image>")
    for row, caption in enumerate(["A road is built at the top of the scene.", "There is no difference."]):
        length = int(mask[row].sum())
        assert mask[row, :length].all() and not mask[row, length:].any()  # right padded for training
        seq, lab = ids[row, :length].tolist(), labels[row, :length].tolist()
        assert (labels[row, length:] == IGNORE).all()  # padding ignored
        assert seq.count(image) == 2 * 729 and all(lab[i] == IGNORE for i, t in enumerate(seq) if t == image)
        # the assistant turn starts at the LAST <|im_start|> and is supervised entirely
        start = length - 1 - seq[::-1].index(im_start)
        assert lab[start:] == seq[start:]
        answer = tok.encode(f"{caption}<|im_end|>\n", add_special_tokens=False)
        assert seq[-len(answer) :] == answer and lab[-len(answer) :] == answer
        assert tok.decode(seq[start:]) == f"<|im_start|>assistant\n{caption}<|im_end|>\n"
        # before it: only "\n", <|im_start|> and <|im_end|> are kept (LLaVA-NeXT behaviour)
        kept = {t for t, label in zip(seq[:start], lab[:start], strict=True) if label != IGNORE}
        assert kept == {im_start, im_end, newline}
        for t, label in zip(seq[:start], lab[:start], strict=True):
            assert label == (t if t in (im_start, im_end, newline) else IGNORE)
        # system and user turns: 3 x (<|im_start|>, <|im_end|>) minus the assistant start
        assert sum(1 for t in seq[:start] if t == im_start) == 2


def test_generate_collator_left_pads_prompt_only(processor):
    processor_left = type(processor)(processor.tokenizer)
    batch = GenerateCollator(processor_left)(_items())
    assert "labels" not in batch and batch["uids"] == ["a", "b"] and batch["refs"] == [["r"], ["r"]]
    assert torch.equal(batch["input_ids"][0], batch["input_ids"][1])  # same prompt, no caption
    last = batch["input_ids"][0, -3:].tolist()
    assert processor.tokenizer.decode(last).endswith("assistant\n")
