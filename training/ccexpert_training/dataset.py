"""Torch datasets over mixture samples (training) and records (evaluation / prediction).

Images are decoded on access (and kept in memory with ``cache_images``, for small sets read for many epochs); a
missing, unreadable or size-mismatched pair raises
:class:`~ccexpert_training.records.RecordError` naming the record: the reference's retry-then-substitute loop
(ccexpert_model.md §4.3) would train on a different sample than the one listed, so we never do that.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from torch.utils.data import Dataset

from .mixture import Sample
from .records import PairRecord


class CaptionPairDataset(Dataset):
    """Training samples. ``random_choice`` samples draw their caption from an RNG keyed by (seed, epoch, index),
    so a run is reproducible and each epoch sees a fresh draw (call :meth:`set_epoch`, the trainer does)."""

    def __init__(self, samples: Sequence[Sample], seed: int = 42, with_masks: bool = False, cache_images: bool = False):
        self.samples = list(samples)
        self.seed = seed
        self.epoch = 0
        self.with_masks = with_masks  # for the auxiliary change-mask loss (CCExpertConfig.change_mask_loss_weight)
        # decoded images (and masks) per record, kept for the next epochs: PNG decoding was 22 % of a demo training
        # step on 2 CPU cores. Per process, so only for sets that fit in memory (the demo's 4000 pairs: ~1.8 GB).
        self.cache_images = cache_images
        self._decoded: dict[tuple[str, str, str, bool], tuple] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def caption_for(self, index: int) -> str:
        sample = self.samples[index]
        record = sample.record
        if sample.caption_index is not None:
            return record.captions[sample.caption_index]
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        return record.captions[rng.randrange(len(record.captions))]

    def __getitem__(self, index: int) -> dict:
        record = self.samples[index].record
        record.check_captions()
        before, after, mask = self._load(record)
        item = {"uid": record.uid, "before": before, "after": after, "caption": self.caption_for(index)}
        if self.with_masks:
            item["change_mask"] = mask
        return item

    def _load(self, record: PairRecord) -> tuple:
        key = (record.uid, str(record.before), str(record.after), self.with_masks)
        if key in self._decoded:
            return self._decoded[key]
        before, after = record.load_images()
        loaded = (before, after, record.load_mask(before.size) if self.with_masks else None)
        if self.cache_images:
            self._decoded[key] = loaded
        return loaded


class PairEvalDataset(Dataset):
    """One item per record, for generation: images, uid and the reference captions."""

    def __init__(self, records: Sequence[PairRecord]):
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        before, after = record.load_images()
        return {"uid": record.uid, "before": before, "after": after, "refs": list(record.captions)}
