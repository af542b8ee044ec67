"""The clients' one PNG encoder (issue 29): lossless for every shape a chip can have, "Up" on every row (what the
server decodes fastest), a valid file by the specification (libpng and PIL both read it and check its CRCs), and
a clear error for what is not an 8-bit RGB array."""

from __future__ import annotations

import io
import struct
import zlib

import imagecodecs
import numpy as np
import pytest
from ccexpert_changes.core.png import PNG_FILTER_UP, PNG_SIGNATURE, encode_rgb
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

RNG = np.random.default_rng(2029)


def _textured(height: int, width: int) -> np.ndarray:
    ramp = np.linspace(0, 255, width)[None, :, None] + np.linspace(0, 60, height)[:, None, None]
    return (ramp + RNG.normal(0, 12, (height, width, 3))).clip(0, 255).astype(np.uint8)


def _chunks(data: bytes) -> list[tuple[bytes, bytes, int]]:
    out, at = [], len(PNG_SIGNATURE)
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        payload = data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        out.append((kind, payload, crc))
        at += 12 + length
    return out


def _pil(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data), formats=["PNG"]).convert("RGB"))


@pytest.mark.parametrize(
    "pixels",
    [
        _textured(384, 384),
        RNG.integers(0, 256, (384, 384, 3), dtype=np.uint8),  # noise: every byte wraps somewhere
        np.zeros((384, 384, 3), np.uint8),
        np.full((5, 7, 3), 255, np.uint8),
        _textured(1, 1),
        _textured(1, 9),
        _textured(9, 1),
    ],
    ids=["textured", "noise", "black", "white", "1x1", "1x9", "9x1"],
)
def test_lossless_through_libpng_and_pil(pixels):
    data = encode_rgb(pixels)
    assert np.array_equal(imagecodecs.png_decode(data), pixels)
    assert np.array_equal(_pil(data), pixels)


def test_every_row_is_up_filtered_in_one_valid_stream():
    pixels = _textured(48, 40)
    data = encode_rgb(pixels)
    assert data.startswith(PNG_SIGNATURE)
    chunks = _chunks(data)
    assert [kind for kind, _, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    for kind, payload, crc in chunks:
        assert zlib.crc32(kind + payload) == crc, kind
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (40, 48, 8, 2, 0, 0, 0)
    rows = np.frombuffer(zlib.decompress(chunks[1][1]), np.uint8).reshape(48, 1 + 3 * 40)
    assert (rows[:, 0] == PNG_FILTER_UP).all()
    assert np.array_equal(rows[0, 1:], pixels[0].reshape(-1))  # the first row's prior row is zeros
    assert np.array_equal(rows[1:, 1:], (pixels[1:].astype(int) - pixels[:-1]).reshape(47, -1) % 256)


def test_a_non_contiguous_view_encodes_its_own_pixels():
    """The plugin hands (3, h, w) bands moved to (h, w, 3): a strided view, not a copy."""
    bands = np.ascontiguousarray(np.moveaxis(_textured(30, 20), -1, 0))
    view = np.moveaxis(bands, 0, -1)
    assert not view.flags["C_CONTIGUOUS"]
    assert np.array_equal(_pil(encode_rgb(view)), view)
    assert encode_rgb(view) == encode_rgb(np.ascontiguousarray(view))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((8, 8, 3), np.float32),
        np.zeros((8, 8, 3), np.uint16),
        np.zeros((8, 8), np.uint8),
        np.zeros((8, 8, 4), np.uint8),
        np.zeros((0, 8, 3), np.uint8),
        np.zeros((8, 0, 3), np.uint8),
    ],
    ids=["float", "16-bit", "2-d", "rgba", "no rows", "no columns"],
)
def test_what_is_not_an_8_bit_rgb_array_is_refused(bad):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        encode_rgb(bad)


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 24), st.integers(1, 24), st.just(3))))
def test_any_rgb_array_round_trips(pixels):
    assert np.array_equal(imagecodecs.png_decode(encode_rgb(pixels)), pixels)
