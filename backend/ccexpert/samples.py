"""A built-in before/after pair, generated (no file shipped): the start-up check of ``ccexpert serve`` captions it.

It is a plausible change (two buildings appear on bare land) rather than a blank chip, so the check runs a whole
caption through the same code as any request: preprocessing, the vision tower and DIM, prefill and cached decoding.
"""

from __future__ import annotations

import numpy as np


def sample_pair(size: int = 384) -> tuple[np.ndarray, np.ndarray]:
    """(before, after) HxWx3 uint8 of `size` px, the same for every call."""
    rng = np.random.default_rng(20261204)
    soil = np.array([150, 128, 96], dtype=np.float32)  # bare land
    texture = rng.normal(0.0, 9.0, (size, size, 1)).astype(np.float32)
    before = np.clip(soil + texture, 0, 255)
    after = before.copy()
    unit = max(size // 12, 2)
    for row, col in ((3, 2), (6, 7)):  # two roofs with a shadow on their south-east side
        top, left = row * unit, col * unit
        after[top + unit // 4 : top + 2 * unit + unit // 4, left + unit // 4 : left + 3 * unit + unit // 4] = 60.0
        after[top : top + 2 * unit, left : left + 3 * unit] = np.array([205, 200, 195], dtype=np.float32)
    return before.astype(np.uint8), after.astype(np.uint8)
