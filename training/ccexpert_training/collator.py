"""Batch collators around :class:`ccexpert.processing_ccexpert.CCExpertProcessor`.

The processor owns the prompt, the 729-token image expansion and the label masking of ccexpert_model.md §3.4
(system/user turns -100 except "\\n", ``<|im_start|>``, ``<|im_end|>``; the whole assistant turn supervised; image
and padding positions -100). The collators only turn dataset items into processor calls.
"""

from __future__ import annotations

from collections.abc import Sequence


class TrainCollator:
    """Items ``{"before", "after", "caption"[, "change_mask"]}`` -> ``input_ids, attention_mask, pixel_values, labels``
    (and ``change_mask`` [B, N] when the items carry masks, for the auxiliary change-mask loss)."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, items: Sequence[dict]) -> dict:
        pairs = [(item["before"], item["after"]) for item in items]
        masks = [item["change_mask"] for item in items] if "change_mask" in items[0] else None
        batch = dict(self.processor(pairs, captions=[item["caption"] for item in items], change_masks=masks))
        if "labels" not in batch:
            raise RuntimeError("the processor returned no 'labels' although captions were given")
        return batch


class GenerateCollator:
    """Items ``{"uid", "before", "after", "refs"}`` -> prompt tensors (left padded) plus ``uids`` and ``refs``."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, items: Sequence[dict]) -> dict:
        pairs = [(item["before"], item["after"]) for item in items]
        batch = dict(self.processor(pairs))
        batch["uids"] = [item["uid"] for item in items]
        batch["refs"] = [item["refs"] for item in items]
        return batch
