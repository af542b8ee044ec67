"""The two reference points for any model scored on the synthetic benchmark.

- always no change: every pair gets "the scene is the same as before" (what a model that learnt nothing but the
  majority answer would say);
- nearest training pair: the caption of the training pair whose before+after images are closest in pixels
  (32x32 thumbnails, L2). It shows how far raw pixel similarity gets when illumination and season vary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ccexpert.nochange import NO_CHANGE_CAPTIONS
from PIL import Image

from ..records import PairRecord, Prediction

THUMB = 32


def always_no_change(records: Sequence[PairRecord], caption: str = NO_CHANGE_CAPTIONS[2]) -> list[Prediction]:
    return [Prediction(r.uid, caption, tuple(r.captions)) for r in records]


def _thumbs(records: Sequence[PairRecord]) -> np.ndarray:
    """[N, THUMB*THUMB*6] float32: before and after, bilinear thumbnails, side by side."""
    out = np.empty((len(records), THUMB * THUMB * 6), np.float32)
    for i, record in enumerate(records):
        parts = []
        for path in (record.before, record.after):
            with Image.open(path) as im:
                thumb = im.convert("RGB").resize((THUMB, THUMB), Image.Resampling.BILINEAR)
                parts.append(np.asarray(thumb, np.float32))
        out[i] = np.concatenate(parts, axis=-1).ravel()
    return out


def nearest_training_pair(train: Sequence[PairRecord], test: Sequence[PairRecord]) -> list[Prediction]:
    """Each test pair gets the first caption of its nearest training pair (L2 over thumbnails)."""
    if not train:
        raise ValueError("nearest_training_pair needs at least one training record")
    train_x, test_x = _thumbs(train), _thumbs(test)
    train_sq = (train_x**2).sum(axis=1)
    predictions = []
    for start in range(0, len(test_x), 256):
        chunk = test_x[start : start + 256]
        distances = train_sq[None, :] - 2.0 * chunk @ train_x.T  # + |test|^2, constant per row
        for offset, index in enumerate(distances.argmin(axis=1).tolist()):
            record = test[start + offset]
            predictions.append(Prediction(record.uid, train[index].captions[0], tuple(record.captions)))
    return predictions
