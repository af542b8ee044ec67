"""Tiny on-disk datasets for the training tests: deterministic PNG pairs + records JSONL (train / val / test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ccexpert.nochange import NO_CHANGE_CAPTIONS
from ccexpert_training.records import PairRecord, write_records
from PIL import Image

CHANGE_CAPTIONS = (
    "Some houses appear at the top.",
    "A building is built at the top.",
    "Several houses are constructed at the top.",
    "A new house appears at the top.",
    "Some buildings have been built at the top.",
)


def make_pair_images(seed: int, changed: bool, size: int = 32) -> tuple[Image.Image, Image.Image]:
    rng = np.random.default_rng(seed)
    before = rng.integers(60, 120, (size, size, 3), dtype=np.uint8)
    after = before.copy()
    if changed:
        after[2 : size // 2, 4 : size - 4] = (240, 230, 40)
    return Image.fromarray(before), Image.fromarray(after)


def write_split(folder: Path, name: str, count: int, seed: int, masks: bool = False) -> Path:
    """``count`` pairs alternating changed / unchanged, 5 captions each (and change masks when asked); returns the
    JSONL path."""
    images = folder / "images" / name
    images.mkdir(parents=True, exist_ok=True)
    records = []
    for index in range(count):
        changed = index % 2 == 0
        before, after = make_pair_images(seed * 1000 + index, changed)
        stem = f"{name}_{index:03d}"
        before.save(images / f"{stem}_A.png")
        after.save(images / f"{stem}_B.png")
        captions = CHANGE_CAPTIONS if changed else tuple(c.capitalize() + "." for c in NO_CHANGE_CAPTIONS)
        mask = None
        if masks:
            mask = images / f"{stem}_mask.png"
            changed_pixels = np.any(np.asarray(before) != np.asarray(after), axis=-1)
            Image.fromarray(changed_pixels.astype(np.uint8) * 255).save(mask)
        records.append(PairRecord(stem, images / f"{stem}_A.png", images / f"{stem}_B.png", captions, changed, mask))
    path = folder / f"{name}.jsonl"
    write_records(records, path)
    return path


def write_tiny_dataset(folder: Path, train: int = 8, val: int = 4, test: int = 4, masks: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_split(folder, "train", train, 1, masks)
    write_split(folder, "val", val, 2)
    write_split(folder, "test", test, 3)
    return folder
