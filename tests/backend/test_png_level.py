"""The clients' PNG level is one constant in core (issue 29): describe's client encodes at it, with zlib's
run-length strategy, losslessly."""

from __future__ import annotations

import io

import numpy as np
from ccexpert.client import encode_png
from ccexpert_changes.core.png import PNG_ZLEVEL, PNG_ZLIB_STRATEGY
from PIL import Image


def test_describe_encodes_at_the_core_level_and_losslessly():
    rng = np.random.default_rng(0)
    chip = (np.linspace(0, 255, 96)[:, None, None] + rng.normal(0, 8, (96, 96, 3))).clip(0, 255).astype(np.uint8)
    data = encode_png(chip)
    for level, strategy, expected in ((PNG_ZLEVEL, PNG_ZLIB_STRATEGY, True), (PNG_ZLEVEL, -1, False), (9, -1, False)):
        buffer = io.BytesIO()
        Image.fromarray(chip, "RGB").save(buffer, format="PNG", compress_level=level, compress_type=strategy)
        assert (buffer.getvalue() == data) is expected, (level, strategy)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), chip)
    assert PNG_ZLEVEL == 1 and PNG_ZLIB_STRATEGY == 3  # Z_RLE
