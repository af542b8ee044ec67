"""Decoding and checking the PNG chips of a request: every refusal names the pair, the image and the problem."""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ApiError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def b64decode(text: str, pair_id: str, which: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "bad_base64", f"pair {pair_id!r}, {which} image: not valid base64", pair_id) from None


def _open(data: bytes, pair_id: str, which: str) -> Image.Image:
    where = f"pair {pair_id!r}, {which} image"
    if not data.startswith(PNG_SIGNATURE):
        raise ApiError(400, "not_png", f"{where}: not a PNG (chips must be lossless PNG)", pair_id)
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ApiError(400, "truncated_png", f"{where}: broken or truncated PNG ({exc})", pair_id) from None
    return image


def _check_mode(image: Image.Image, where: str, pair_id: str) -> None:
    bands = len(image.getbands())
    if image.mode == "RGB":
        return
    if bands != 3:
        raise ApiError(400, "wrong_bands", f"{where}: expected 3 bands (8-bit RGB), got {bands} (mode {image.mode})",
                       pair_id)
    raise ApiError(400, "wrong_mode", f"{where}: expected 8-bit RGB, got mode {image.mode}", pair_id)


def decode_pair(before: bytes, after: bytes, pair_id: str, chip_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two HxWx3 uint8 arrays. Sizes are checked from the PNG header before any pixel is decoded, so a
    decompression bomb is refused without being inflated."""
    images = {"before": _open(before, pair_id, "before"), "after": _open(after, pair_id, "after")}
    if images["before"].size != images["after"].size:
        raise ApiError(400, "size_mismatch", f"pair {pair_id!r}: before is {_wh(images['before'])} but after is "
                       f"{_wh(images['after'])}", pair_id)
    arrays = []
    for which, image in images.items():
        where = f"pair {pair_id!r}, {which} image"
        if image.size != (chip_size, chip_size):
            raise ApiError(400, "wrong_size", f"{where}: expected {chip_size}x{chip_size}, got {_wh(image)}", pair_id)
        _check_mode(image, where, pair_id)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ApiError(400, "truncated_png", f"{where}: broken or truncated PNG ({exc})", pair_id) from None
        arrays.append(np.asarray(image, dtype=np.uint8))
    return arrays[0], arrays[1]


def _wh(image: Image.Image) -> str:
    return f"{image.size[0]}x{image.size[1]}"
