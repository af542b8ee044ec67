"""Processor: exact ChatML prompt, 729 placeholders per image, image preprocessing, label masking, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ccexpert.presets import build_tiny_tokenizer
from ccexpert.processing_ccexpert import IGNORE_INDEX, PROMPT, CCExpertProcessor
from conftest import make_pair
from PIL import Image

EXPECTED_PROMPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "This is the Image1 <image>. This is the second Image2 <image>.\n"
    "What difference happened from Image1 to Image2?<|im_end|>\n<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def processor():
    return CCExpertProcessor(build_tiny_tokenizer())


def _collapse_images(ids: list[int], image_id: int) -> list[int]:
    out = []
    for token in ids:
        if token != image_id or not out or out[-1] != image_id:
            out.append(token)
    return out


def test_prompt_is_the_reference_chatml_with_729_placeholders_per_image(processor):
    assert PROMPT == EXPECTED_PROMPT
    batch = processor([make_pair(1)])
    ids = batch["input_ids"][0].tolist()
    image_id = processor.image_token_id
    assert ids.count(image_id) == 2 * 729
    runs = [i for i in range(len(ids)) if ids[i] == image_id and (i == 0 or ids[i - 1] != image_id)]
    assert len(runs) == 2 and all(ids[r : r + 729] == [image_id] * 729 for r in runs)
    text = processor.tokenizer.decode(_collapse_images(ids, image_id))
    assert text == EXPECTED_PROMPT
    assert batch["attention_mask"].all()


def test_image_preprocessing_is_bicubic_squash_and_half_normalisation(processor):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)  # not square: squashed, not cropped
    pixels = processor([(image, image)])["pixel_values"]
    assert pixels.shape == (1, 2, 3, 384, 384) and pixels.dtype == torch.float32
    resized = np.asarray(Image.fromarray(image).resize((384, 384), Image.Resampling.BICUBIC), dtype=np.float64)
    expected = torch.from_numpy(((resized / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)).float()
    torch.testing.assert_close(pixels[0, 0], expected, atol=1e-6, rtol=0)
    assert pixels.min() >= -1 and pixels.max() <= 1
    # PIL input (any mode) is converted to RGB and gives the same tensor as the array
    pil = processor([(Image.fromarray(image), Image.fromarray(image).convert("RGBA"))])["pixel_values"]
    torch.testing.assert_close(pil[0, 0], pixels[0, 0])
    torch.testing.assert_close(pil[0, 1], pixels[0, 0])


def test_before_is_image_0_and_after_is_image_1(processor):
    before, after = make_pair(3)
    pixels = processor([(before, after)])["pixel_values"][0]
    assert torch.equal(pixels[0], processor([(before, before)])["pixel_values"][0, 0])
    assert torch.equal(pixels[1], processor([(after, after)])["pixel_values"][0, 1])


def test_labels_follow_the_reference_masking(processor):
    captions = ["A house is built.", "There is no difference in the two scenes at all."]
    batch = processor([make_pair(1), make_pair(2)], captions=captions, padding_side="right")
    tok = processor.tokenizer
    keep_in_prompt = {processor.im_start_id, processor.im_end_id, processor.newline_id}
    for row, caption in enumerate(captions):
        mask = batch["attention_mask"][row].bool()
        ids, labels = batch["input_ids"][row][mask].tolist(), batch["labels"][row][mask].tolist()
        answer = tok.encode(f"{caption}<|im_end|>\n", add_special_tokens=False)
        assert ids[-len(answer) :] == answer and labels[-len(answer) :] == answer
        prompt_len = len(ids) - len(answer)
        assistant = prompt_len - len(tok.encode("<|im_start|>assistant\n", add_special_tokens=False))
        assert labels[assistant:prompt_len] == ids[assistant:prompt_len]  # the whole assistant turn is supervised
        for token, label in zip(ids[:assistant], labels[:assistant], strict=True):
            assert label == (token if token in keep_in_prompt else IGNORE_INDEX)
        assert processor.image_token_id not in labels
        assert (batch["labels"][row][~mask] == IGNORE_INDEX).all()
        assert (batch["input_ids"][row][~mask] == tok.pad_token_id).all()
    # right padding: real tokens first
    assert batch["attention_mask"][0, 0] == 1 and batch["attention_mask"][0, -1] == 0


def test_left_padding_for_generation(processor):
    batch = processor([make_pair(1), make_pair(2)], captions=["A house.", "A much longer caption about roads."])
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][:, -1].all()
    with pytest.raises(ValueError, match="padding_side"):
        processor([make_pair(1)], padding_side="middle")


BAD_IMAGES = [
    (None, "got None"),
    (np.zeros((64, 64), dtype=np.uint8), r"shape \(64, 64\)"),
    (np.zeros((64, 64, 4), dtype=np.uint8), r"shape \(64, 64, 4\)"),
    (np.zeros((3, 64, 64), dtype=np.uint8), r"shape \(3, 64, 64\)"),
    (np.zeros((64, 64, 3), dtype=np.float32), "dtype float32"),
    (np.zeros((64, 64, 3), dtype=np.uint16), "dtype uint16"),
    (np.zeros((0, 64, 3), dtype=np.uint8), "non-empty"),
    (Image.new("RGB", (0, 0)), "non-empty"),
    ("before.png", "got str"),
    ([[1, 2, 3]], "got list"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_IMAGES)
@pytest.mark.parametrize("slot", [0, 1])
def test_bad_images_name_the_pair_and_the_image(processor, bad, message, slot):
    pairs = [make_pair(1), make_pair(2), make_pair(3), make_pair(4)]
    pair = list(pairs[3])
    pair[slot] = bad
    pairs[3] = tuple(pair)
    where = "pair 3, before image" if slot == 0 else "pair 3, after image"
    with pytest.raises(ValueError, match=f"{where}: expected .*{message}"):
        processor(pairs)


def test_bad_batches(processor):
    with pytest.raises(ValueError, match="no image pairs"):
        processor([])
    with pytest.raises(ValueError, match="not a single pair"):
        processor(make_pair(1))
    with pytest.raises(ValueError, match=r"pair 1: expected a \(before, after\) pair"):
        processor([make_pair(1), (make_pair(2)[0],)])
    with pytest.raises(ValueError, match="2 captions for 1 pairs"):
        processor([make_pair(1)], captions=["a", "b"])
    with pytest.raises(ValueError, match="pair 0: caption must be a non-empty string"):
        processor([make_pair(1)], captions=["  "])


def test_processor_round_trips_through_a_model_folder(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    loaded = CCExpertProcessor.from_pretrained(tmp_path)
    assert loaded.prompt_ids == processor.prompt_ids and loaded.image_token_id == processor.image_token_id


def test_tokenizer_must_have_the_chatml_specials():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    bare = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), pad_token="<pad>")
    with pytest.raises(ValueError, match="lacks the special tokens"):
        CCExpertProcessor(bare)


def test_change_masks_become_per_token_changed_fractions(processor):
    """A mask is squash-resized like the images (nearest) and averaged per SigLIP patch; the 6 px SigLIP drops at
    384 / 14 are dropped here too; a pair without a mask gets -1 everywhere."""
    mask = np.zeros((384, 384), dtype=np.uint8)
    mask[14:28, 28:42] = 1  # exactly patch (row 1, col 2)
    mask[0:7, 0:14] = 255  # half of patch (0, 0)
    mask[380:, :] = 1  # beyond the last whole patch: ignored
    batch = processor([make_pair(1), make_pair(2)], captions=["A house.", "No change."], change_masks=[mask, None])
    fractions = batch["change_mask"]
    assert fractions.shape == (2, 729) and fractions.dtype == torch.float32
    grid = fractions[0].view(27, 27)
    assert grid[1, 2] == 1.0 and grid[0, 0] == 0.5
    assert grid.sum() == 1.5
    assert torch.equal(fractions[1], torch.full((729,), -1.0))
    # a 96 x 96 PIL mask is resized to 384 first: its top-left quarter covers rows/cols 0..191 of 384
    small = np.zeros((96, 96), dtype=np.uint8)
    small[:48, :48] = 1
    grid = processor([make_pair(1)], change_masks=[Image.fromarray(small)])["change_mask"][0].view(27, 27)
    assert torch.all(grid[:13, :13] == 1.0) and torch.all(grid[14:, :] == 0.0)
    assert 0 < grid[13, 0] < 1  # the patch straddling pixel 192


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        ([np.zeros((8, 8, 3), dtype=np.uint8)], "pair 0, change mask: a change mask must be a non-empty HxW"),
        ([np.zeros((0, 8), dtype=np.uint8)], "pair 0, change mask: a change mask must be a non-empty HxW"),
        (["mask.png"], "pair 0, change mask: a change mask must be"),
        ([None, None], "got 2 change masks for 1 pairs"),
    ],
)
def test_bad_change_masks(processor, masks, message):
    with pytest.raises(ValueError, match=message):
        processor([make_pair(1)], captions=["A house."], change_masks=masks)
