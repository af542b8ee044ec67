"""Decoding and checking the PNG chips of a request: every refusal names the pair, the image and the problem.

Size, bit depth and colour type are read from the PNG's IHDR chunk before any decoder sees the data, so a
decompression bomb (a header claiming 100000 x 100000) is refused as ``wrong_size`` without being inflated, and a
16-bit PNG is refused as ``wrong_mode`` instead of being cut to 8 bits.

Pixels are decoded by libpng through ``imagecodecs``, which releases the GIL for the whole decode: the service's
worker pool (``prefetch.worker_pool``) then decodes on every core, where PIL's decoder holds the GIL for part of
each chip (issue 29: 30-50 % more pairs/s on 2 cores, ``bench/bench_prepare.py``). Interlaced (Adam7) PNGs, rare
from our clients, go through PIL.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
from dataclasses import dataclass

import imagecodecs
import numpy as np
from ccexpert_changes.core.png import PNG_SIGNATURE
from PIL import Image, UnidentifiedImageError

from .errors import ApiError

# PNG colour type -> (name, channels)
_COLOUR_TYPES = {0: ("grey", 1), 2: ("RGB", 3), 3: ("palette", 1), 4: ("grey+alpha", 2), 6: ("RGBA", 4)}


def b64decode(text: str, pair_id: str, which: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "bad_base64", f"pair {pair_id!r}, {which} image: not valid base64", pair_id) from None


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool = False

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def wh(self) -> str:
        return f"{self.width}x{self.height}"


def read_header(data: bytes, pair_id: str, which: str) -> PngHeader:
    """The IHDR fields of a PNG, checked for sanity; 400 ``not_png`` / ``truncated_png`` otherwise."""
    where = f"pair {pair_id!r}, {which} image"
    if not data.startswith(PNG_SIGNATURE):
        raise ApiError(400, "not_png", f"{where}: not a PNG (chips must be lossless PNG)", pair_id)
    if len(data) < 33 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise ApiError(400, "truncated_png", f"{where}: broken or truncated PNG (no IHDR header)", pair_id)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if width == 0 or height == 0 or colour not in _COLOUR_TYPES or depth not in (1, 2, 4, 8, 16):
        raise ApiError(
            400,
            "truncated_png",
            f"{where}: broken PNG header ({width}x{height}, bit depth {depth}, colour type {colour})",
            pair_id,
        )
    return PngHeader(width, height, depth, colour, interlace != 0)


def _check_mode(header: PngHeader, where: str, pair_id: str) -> None:
    """8-bit RGB only. Not 8 bits per sample, or a palette: ``wrong_mode``; 8-bit with other than 3 colour
    channels: ``wrong_bands``."""
    name, channels = _COLOUR_TYPES[header.colour_type]
    if header.bit_depth != 8 or header.colour_type == 3:
        raise ApiError(400, "wrong_mode", f"{where}: expected 8-bit RGB, got {header.bit_depth}-bit {name}", pair_id)
    if channels != 3:
        raise ApiError(400, "wrong_bands", f"{where}: expected 3 bands (8-bit RGB), got {channels} ({name})", pair_id)


def _decode(data: bytes, header: PngHeader, where: str, pair_id: str) -> np.ndarray:
    """``(h, w, 3)`` uint8 from a PNG whose header was checked (8-bit RGB, the expected size)."""
    if header.interlaced:
        return _decode_pil(data, where, pair_id)
    try:
        pixels = imagecodecs.png_decode(data)
    except Exception as exc:  # imagecodecs.PngError, and whatever a corrupt stream makes libpng's wrapper raise
        raise ApiError(400, "truncated_png", f"{where}: broken or truncated PNG ({exc})", pair_id) from None
    if pixels.shape != (header.height, header.width, 3) or pixels.dtype != np.uint8:  # the header must not lie
        raise ApiError(
            400, "wrong_mode", f"{where}: expected 8-bit RGB, decoded {pixels.dtype} {pixels.shape}", pair_id
        )
    return pixels


def _decode_pil(data: bytes, where: str, pair_id: str) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
        if image.mode != "RGB":  # the header said 8-bit RGB; PIL must agree
            raise ApiError(400, "wrong_mode", f"{where}: expected 8-bit RGB, got mode {image.mode}", pair_id)
        image.load()
    except ApiError:
        raise
    except Image.DecompressionBombError:  # cannot happen after the header check; never a 500 all the same
        raise ApiError(400, "wrong_size", f"{where}: image too large", pair_id) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as exc:
        raise ApiError(400, "truncated_png", f"{where}: broken or truncated PNG ({exc})", pair_id) from None
    return np.asarray(image, dtype=np.uint8)


def decode_pair(before: bytes, after: bytes, pair_id: str, chip_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two HxWx3 uint8 arrays. Sizes and modes are checked from the PNG headers before any pixel is decoded."""
    data = {"before": before, "after": after}
    headers = {which: read_header(raw, pair_id, which) for which, raw in data.items()}
    if headers["before"].size != headers["after"].size:
        raise ApiError(
            400,
            "size_mismatch",
            f"pair {pair_id!r}: before is {headers['before'].wh} but after is {headers['after'].wh}",
            pair_id,
        )
    for which, header in headers.items():
        where = f"pair {pair_id!r}, {which} image"
        if header.size != (chip_size, chip_size):
            raise ApiError(400, "wrong_size", f"{where}: expected {chip_size}x{chip_size}, got {header.wh}", pair_id)
        _check_mode(header, where, pair_id)
    arrays = [_decode(raw, headers[which], f"pair {pair_id!r}, {which} image", pair_id) for which, raw in data.items()]
    return arrays[0], arrays[1]
