"""describe's client sends what the plugin sends (issue 29): the clients' one encoder, ``core.png.encode_rgb``,
byte for byte, and the service decodes it to the chip's own pixels."""

from __future__ import annotations

import numpy as np
from ccexpert.client import encode_png
from ccexpert.service.images import decode_pair
from ccexpert_changes.core.png import encode_rgb


def test_describe_encodes_with_the_core_encoder_and_the_service_reads_it_back():
    rng = np.random.default_rng(0)
    before = (np.linspace(0, 255, 96)[:, None, None] + rng.normal(0, 8, (96, 96, 3))).clip(0, 255).astype(np.uint8)
    after = before[::-1].copy()
    data = encode_png(before), encode_png(after)
    assert data == (encode_rgb(before), encode_rgb(after))
    decoded = decode_pair(*data, "p", 96)
    assert np.array_equal(decoded[0], before) and np.array_equal(decoded[1], after)
    assert encode_png(data[0]) == data[0]  # PNG bytes pass through untouched
