"""The service's PNG decode (issue 29): libpng through imagecodecs gives the pixels PIL gives, for every filter a
client's encoder picks, interlaced chips still decode (through PIL), and a broken stream is a 400, never a 500."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from ccexpert.service.errors import ApiError
from ccexpert.service.images import decode_pair, read_header
from PIL import Image

RNG = np.random.default_rng(29)


def _pil_png(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, "RGB").save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _interlaced_png(array: np.ndarray) -> bytes:
    """An Adam7-interlaced 8-bit RGB PNG (filter 0 on every row): neither PIL nor GDAL writes one."""
    height, width, _ = array.shape
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = array[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def _textured(size: int) -> np.ndarray:
    """Smooth gradients plus noise: what makes libpng's and PIL's encoders pick Sub, Up, Average and Paeth rows."""
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([x, y, (x + y) // 2], axis=-1) * (200 / size)
    return (base + RNG.integers(0, 40, base.shape)).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("options", [{"compress_level": 1}, {"compress_level": 6}, {"compress_level": 0}])
def test_the_service_decodes_the_pixels_pil_decodes(options):
    before, after = _textured(96), RNG.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    got = decode_pair(_pil_png(before, **options), _pil_png(after, **options), "p", 96)
    assert got[0].dtype == np.uint8 and got[0].shape == (96, 96, 3)
    np.testing.assert_array_equal(got[0], before)
    np.testing.assert_array_equal(got[1], after)


def test_an_interlaced_chip_decodes_to_the_same_pixels():
    array = _textured(64)
    data = _interlaced_png(array)
    assert read_header(data, "p", "before").interlaced
    assert np.asarray(Image.open(io.BytesIO(data))).tolist() == array.tolist()  # the writer above is right
    got, _ = decode_pair(data, _pil_png(array), "p", 64)
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("damage", ["idat_byte", "idat_crc", "no_iend_and_cut", "idat_swapped_for_junk"])
def test_a_broken_stream_is_a_400_truncated_png(damage):
    good = _pil_png(_textured(64), compress_level=1)
    start = good.index(b"IDAT")
    if damage == "idat_byte":  # CRC kept valid: the inflate itself fails
        length = struct.unpack(">I", good[start - 4 : start])[0]
        payload = bytearray(good[start + 4 : start + 4 + length])
        payload[len(payload) // 2] ^= 0xFF
        payload[2:10] = b"\xff" * 8
        bad = good[: start - 4] + _chunk(b"IDAT", bytes(payload)) + good[start + 8 + length :]
    elif damage == "idat_crc":
        bad = good[: start + 10] + bytes([good[start + 10] ^ 1]) + good[start + 11 :]
    elif damage == "no_iend_and_cut":
        bad = good[: len(good) // 2]
    else:
        bad = good[: start - 4] + _chunk(b"IDAT", b"\x00" * 300) + good[good.index(b"IEND") - 4 :]
    with pytest.raises(ApiError) as caught:
        decode_pair(bad, good, "p7", 64)
    assert caught.value.status == 400 and caught.value.code == "truncated_png"
    assert "pair 'p7', before image" in str(caught.value.message)
