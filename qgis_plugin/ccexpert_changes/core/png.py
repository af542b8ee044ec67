"""How clients (the plugin and ``ccexpert describe``) encode chips as PNG: one zlib level for both.

Level 1 (fastest): a textured 384 px chip is encoded several times faster than at zlib's default 6 for a few
per cent more bytes on the wire (``bench/bench_prepare.py --png-levels`` measures both; docs/SERVING.md). The
server inflates either at the same speed, so the level only moves work between the client's CPU and the network.
"""

from __future__ import annotations

PNG_ZLEVEL = 1

__all__ = ["PNG_ZLEVEL"]
