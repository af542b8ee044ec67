"""How clients (the plugin and ``ccexpert describe``) encode chips as PNG: one zlib level for both.

Level 1 (fastest): a textured 384 px chip is encoded several times faster than at zlib's default 6 for a few
per cent more bytes on the wire (``bench/bench_prepare.py --png-levels`` measures both; docs/SERVING.md).

describe (PIL) also asks zlib for its run-length strategy (``Z_RLE``): after PNG's row filters most of a chip's
redundancy is between neighbouring bytes, so on real and generated 384 px chips it made smaller streams (236 vs
242 kB, 296 vs 319 kB), encoded 20 % faster and decoded 8-40 % faster on the server than the default strategy.
GDAL's PNG driver (the plugin) takes only a level, so the plugin's chips keep zlib's default strategy; the server
decodes both alike.
"""

from __future__ import annotations

PNG_ZLEVEL = 1
PNG_ZLIB_STRATEGY = 3  # zlib's Z_RLE (PIL's ``compress_type``)

__all__ = ["PNG_ZLEVEL", "PNG_ZLIB_STRATEGY"]
