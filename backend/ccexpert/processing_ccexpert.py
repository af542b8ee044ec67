"""Processor: before/after images + the fixed CCExpert ChatML prompt -> model inputs (reference §1, §3.3, §3.4).

Images are squash-resized (bicubic) to 384x384, scaled to [0, 1] and normalised with mean = std = 0.5 (numpy + PIL, no
torchvision). Each `<image>` of the prompt becomes exactly `image_seq_length` (729) placeholder tokens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
import torch
from PIL import Image
from transformers import AutoTokenizer, PreTrainedTokenizerBase

SYSTEM_PROMPT = "You are a helpful assistant."
USER_PROMPT = (
    "This is the Image1 <image>. This is the second Image2 <image>.\nWhat difference happened from Image1 to Image2?"
)
PROMPT = (
    f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{USER_PROMPT}<|im_end|>\n<|im_start|>assistant\n"
)
IMAGE_TOKEN = "<image>"
IGNORE_INDEX = -100
IMAGE_MEAN = 0.5
IMAGE_STD = 0.5
_IMAGE_NAMES = ("before", "after")


class CCExpertProcessor:
    """Turns (before, after) pairs, and optionally reference captions, into `input_ids`, `attention_mask`,
    `pixel_values [B, 2, 3, S, S]` and `labels`.

    Generation batches are left padded (`padding_side="left"`, the default); training batches may be right padded
    (`padding_side="right"`, as the reference collator does). Padding uses the tokenizer's pad token (`<|endoftext|>`).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        image_size: int = 384,
        image_seq_length: int = 729,
        padding_side: str = "left",
    ):
        missing = [t for t in ("<|im_start|>", "<|im_end|>", IMAGE_TOKEN) if t not in tokenizer.get_vocab()]
        if missing:
            raise ValueError(f"tokenizer lacks the special tokens {missing}")
        if tokenizer.pad_token_id is None:
            raise ValueError("tokenizer has no pad token (expected <|endoftext|>)")
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.image_seq_length = image_seq_length
        self.padding_side = _check_side(padding_side)
        # one token in, one id out (transformers types both call forms `int | list[int]`, without overloads)
        self.image_token_id = cast(int, tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
        self.im_start_id = cast(int, tokenizer.convert_tokens_to_ids("<|im_start|>"))
        self.im_end_id = cast(int, tokenizer.convert_tokens_to_ids("<|im_end|>"))
        self.pad_token_id = tokenizer.pad_token_id
        newline = tokenizer.encode("\n", add_special_tokens=False)
        self.newline_id = newline[0] if len(newline) == 1 else None
        self.prompt_ids = self._expand_images(tokenizer.encode(PROMPT, add_special_tokens=False))
        self.prompt_labels = self._prompt_labels(self.prompt_ids)
        self._prompt_row: torch.Tensor | None = None  # built on first use by `prompt_batch`

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> CCExpertProcessor:
        """Load the tokenizer of a model folder or hub id; image size and token count come from its config."""
        tokenizer = AutoTokenizer.from_pretrained(str(path), **kwargs)
        image_size, seq_len = 384, 729
        config_file = Path(path) / "config.json"
        if config_file.is_file():
            config = json.loads(config_file.read_text())
            image_size = int(config.get("vision_config", {}).get("image_size", image_size))
            seq_len = int(config.get("image_seq_length", seq_len))
        return cls(tokenizer, image_size=image_size, image_seq_length=seq_len)

    def save_pretrained(self, path: str | Path) -> None:
        self.tokenizer.save_pretrained(str(path))

    # -- text -----------------------------------------------------------------------------------------------------

    def _expand_images(self, ids: list[int]) -> list[int]:
        if ids.count(self.image_token_id) != 2:
            raise ValueError(f"the prompt must tokenise to exactly two {IMAGE_TOKEN} tokens")
        expanded: list[int] = []
        for token in ids:
            expanded.extend([token] * self.image_seq_length if token == self.image_token_id else [token])
        return expanded

    def _prompt_labels(self, ids: list[int]) -> list[int]:
        """§3.4: system/user turns are ignored except "\\n", <|im_start|> and <|im_end|>; the assistant turn is kept."""
        keep = {self.im_start_id, self.im_end_id, self.newline_id}
        assistant_start = len(ids) - 1 - ids[::-1].index(self.im_start_id)  # the final "<|im_start|>assistant\n"
        return [t if (i >= assistant_start or t in keep) else IGNORE_INDEX for i, t in enumerate(ids)]

    def caption_ids(self, caption: str) -> list[int]:
        """The supervised answer: caption + <|im_end|> + "\\n" (the raw caption; no lower-casing, period kept)."""
        return self.tokenizer.encode(f"{caption}<|im_end|>\n", add_special_tokens=False)

    def decode(self, token_ids: Sequence[int]) -> str:
        """Generated ids -> a clean caption: special tokens and broken UTF-8 bytes dropped, whitespace collapsed."""
        text = cast(str, self.tokenizer.decode(list(token_ids), skip_special_tokens=True))  # one sequence: one str
        text = text.replace("\ufffd", "")
        return " ".join(text.split())

    # -- images ---------------------------------------------------------------------------------------------------

    def check_image(self, image, where: str) -> None:
        """Raise ValueError naming `where` ("pair 3, after image") unless `image` is HxWx3 uint8 or a non-empty PIL."""
        expected = "an HxWx3 uint8 numpy array or a PIL image"
        if image is None:
            raise ValueError(f"{where}: expected {expected}, got None")
        if isinstance(image, Image.Image):
            if image.width == 0 or image.height == 0:
                raise ValueError(f"{where}: expected a non-empty image, got a {image.width}x{image.height} PIL image")
            return
        if not isinstance(image, np.ndarray):
            raise ValueError(f"{where}: expected {expected}, got {type(image).__name__}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{where}: expected HxWx3 uint8, got an array of shape {image.shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"{where}: expected HxWx3 uint8, got dtype {image.dtype}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"{where}: expected a non-empty HxWx3 uint8 image, got shape {image.shape}")

    def preprocess_image(self, image, where: str) -> np.ndarray:
        """HxWx3 uint8 array or PIL image -> float32 [3, S, S] (squash-resize bicubic, [0, 1], mean/std 0.5)."""
        self.check_image(image, where)
        pil = image.convert("RGB") if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image))
        if pil.size != (self.image_size, self.image_size):
            pil = pil.resize((self.image_size, self.image_size), resample=Image.Resampling.BICUBIC)
        pixels = np.asarray(pil, dtype=np.float32) * (1.0 / 255.0)  # [S, S, 3] in [0, 1]
        pixels = (pixels - IMAGE_MEAN) / IMAGE_STD
        return pixels.transpose(2, 0, 1)  # [3, S, S]

    def image_uint8(self, image, where: str) -> np.ndarray:
        """HxWx3 uint8 array or PIL image -> uint8 [S, S, 3]: the same squash-resize as `preprocess_image`, skipped
        when the chip is already S x S, and no float maths: the engine scales and normalises on its device."""
        self.check_image(image, where)
        if isinstance(image, np.ndarray) and image.shape[:2] == (self.image_size, self.image_size):
            return image  # the one copy is into the batch
        pil = image.convert("RGB") if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image))
        if pil.size != (self.image_size, self.image_size):
            pil = pil.resize((self.image_size, self.image_size), resample=Image.Resampling.BICUBIC)
        return np.asarray(pil, dtype=np.uint8)

    def pixels_uint8(self, pairs: Sequence[tuple], first_index: int = 0, out: np.ndarray | None = None) -> np.ndarray:
        """Checked (before, after) pairs -> uint8 [B, 2, S, S, 3], channels last as decoded, so filling it is a plain
        memcpy per image (a quarter of the float32 bytes; channels first is a free view on the device).
        `normalize_pixels` of its [B, 2, 3, S, S] view gives exactly the `pixel_values` of `__call__`."""
        shape = (len(pairs), 2, self.image_size, self.image_size, 3)
        pixels = np.empty(shape, dtype=np.uint8) if out is None else out
        if pixels.shape != shape or pixels.dtype != np.uint8:
            raise ValueError(f"out must be uint8 {shape}, got {pixels.dtype} {pixels.shape}")
        for index, pair in enumerate(pairs):
            for slot, image in enumerate(pair):
                pixels[index, slot] = self.image_uint8(image, f"pair {first_index + index}, {_IMAGE_NAMES[slot]} image")
        return pixels

    def prompt_batch(self, batch_size: int) -> dict[str, torch.Tensor]:
        """`input_ids` and `attention_mask` [B, L] of a generation batch: the fixed prompt's row, tokenised once and
        repeated (every row has the same length, so left padding adds nothing), as `__call__` builds them."""
        if self._prompt_row is None:
            self._prompt_row = torch.tensor([self.prompt_ids], dtype=torch.long)
        row = self._prompt_row
        return {"input_ids": row.repeat(batch_size, 1), "attention_mask": torch.ones_like(row).repeat(batch_size, 1)}

    def patch_change_fraction(self, mask, where: str) -> np.ndarray:
        """A change mask (HxW array or PIL image; nonzero = changed) -> float32 [N]: the changed fraction of each
        image token's patch, after the same squash-resize as the images (nearest). Pixels beyond the last whole
        patch are dropped, as SigLIP's strided patch embedding drops them."""
        if isinstance(mask, Image.Image):
            mask = np.asarray(mask.convert("L"))
        if not isinstance(mask, np.ndarray) or mask.ndim != 2 or 0 in mask.shape:
            shape = getattr(mask, "shape", type(mask).__name__)
            raise ValueError(f"{where}: a change mask must be a non-empty HxW array or PIL image, got {shape}")
        changed = Image.fromarray((mask != 0).astype(np.uint8) * 255)
        if changed.size != (self.image_size, self.image_size):
            changed = changed.resize((self.image_size, self.image_size), resample=Image.Resampling.NEAREST)
        grid = round(self.image_seq_length**0.5)
        patch = self.image_size // grid
        pixels = np.asarray(changed, dtype=np.float32)[: grid * patch, : grid * patch] / 255.0
        return pixels.reshape(grid, patch, grid, patch).mean(axis=(1, 3)).reshape(-1)  # [N], row-major like SigLIP

    def validate(self, pairs: Sequence[tuple], first_index: int = 0) -> list[tuple]:
        """Check every pair and image without preprocessing (cheap), so a long job fails before any work."""
        if isinstance(pairs, tuple) and len(pairs) == 2 and not isinstance(pairs[0], tuple | list):
            raise ValueError("pass a sequence of (before, after) pairs, e.g. [(before, after)], not a single pair")
        pairs = list(pairs)
        if not pairs:
            raise ValueError("no image pairs given")
        for index, pair in enumerate(pairs):
            number = first_index + index
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ValueError(f"pair {number}: expected a (before, after) pair of images, got {type(pair).__name__}")
            for slot, image in enumerate(pair):
                self.check_image(image, f"pair {number}, {_IMAGE_NAMES[slot]} image")
        return pairs

    # -- batch ----------------------------------------------------------------------------------------------------

    def __call__(
        self,
        pairs: Sequence[tuple],
        captions: Sequence[str] | None = None,
        padding_side: str | None = None,
        first_index: int = 0,
        change_masks: Sequence | None = None,
    ) -> dict[str, torch.Tensor]:
        """`first_index` numbers the pairs in error messages when this batch is a chunk of a longer list.
        `change_masks` (one mask or None per pair) adds `change_mask` [B, N] for the auxiliary loss (-1 = no mask)."""
        pairs = self.validate(pairs, first_index)
        if captions is not None:
            captions = [captions] if isinstance(captions, str) else list(captions)
            if len(captions) != len(pairs):
                raise ValueError(f"got {len(captions)} captions for {len(pairs)} pairs")
        side = _check_side(padding_side or self.padding_side)

        pixel_values = np.empty((len(pairs), 2, 3, self.image_size, self.image_size), dtype=np.float32)
        for index, pair in enumerate(pairs):
            for slot, image in enumerate(pair):
                where = f"pair {first_index + index}, {_IMAGE_NAMES[slot]} image"
                pixel_values[index, slot] = self.preprocess_image(image, where)

        sequences, label_rows = [], []
        for index in range(len(pairs)):
            if captions is None:
                sequences.append(self.prompt_ids)
                continue
            caption = captions[index]
            if not isinstance(caption, str) or not caption.strip():
                raise ValueError(f"pair {first_index + index}: caption must be a non-empty string, got {caption!r}")
            answer = self.caption_ids(captions[index])
            sequences.append(self.prompt_ids + answer)
            label_rows.append(self.prompt_labels + answer)

        length = max(len(s) for s in sequences)
        input_ids = torch.full((len(pairs), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(pairs), length), dtype=torch.long)
        labels = torch.full((len(pairs), length), IGNORE_INDEX, dtype=torch.long) if captions is not None else None
        for row, ids in enumerate(sequences):
            span = slice(length - len(ids), length) if side == "left" else slice(0, len(ids))
            input_ids[row, span] = torch.tensor(ids)
            attention_mask[row, span] = 1
            if labels is not None:
                labels[row, span] = torch.tensor(label_rows[row])

        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pixel_values": torch.from_numpy(pixel_values),
        }
        if labels is not None:
            batch["labels"] = labels
        if change_masks is not None:
            if len(change_masks) != len(pairs):
                raise ValueError(f"got {len(change_masks)} change masks for {len(pairs)} pairs")
            fractions = np.full((len(pairs), self.image_seq_length), -1.0, dtype=np.float32)
            for index, mask in enumerate(change_masks):
                if mask is not None:
                    fractions[index] = self.patch_change_fraction(mask, f"pair {first_index + index}, change mask")
            batch["change_mask"] = torch.from_numpy(fractions)
        return batch


def normalize_pixels(pixels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """uint8 pixels [..., 3, S, S] (any strides, on the model's device) -> `dtype` values scaled to [0, 1] and
    normalised with mean/std 0.5, in float32 first with the very operations of `preprocess_image`, so the values
    are bit for bit the same."""
    # one new (contiguous, channels first) buffer, then in place: on a CPU the allocations dominate
    values = pixels.to(torch.float32, memory_format=torch.contiguous_format)
    return values.mul_(1.0 / 255.0).sub_(IMAGE_MEAN).div_(IMAGE_STD).to(dtype)


def _check_side(side: str) -> str:
    if side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
    return side


__all__ = ["PROMPT", "CCExpertProcessor", "IGNORE_INDEX", "normalize_pixels"]
