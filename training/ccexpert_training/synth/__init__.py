"""Synthetic bi-temporal benchmark: procedural aerial-like pairs with semantic change masks, and
georeferenced GeoTIFF scenes with a known layout of changes."""

from .pairs import Pair, make_pair, write_benchmark
from .scenes import make_scene_pair

__all__ = ["Pair", "make_pair", "make_scene_pair", "write_benchmark"]
