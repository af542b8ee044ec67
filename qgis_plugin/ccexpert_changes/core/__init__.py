"""Qt-free core of the plugin, also imported by ``ccexpert describe``: chip grid, output fields, 8-bit stretch.

Pure Python + numpy: QGIS's Python can import it, and so can the backend without QGIS.
"""

from .fields import FIELD_NAMES, FIELDS, LAYER_NAME, STATUS_ERROR, STATUS_OK, STATUS_SKIPPED_NODATA, make_record
from .grid import Chip, ChipGrid, RasterGrid, parse_tile_id
from .stretch import Stretch, compute_stretch, nodata_fraction, padded_valid_mask, valid_mask

__all__ = [
    "FIELDS",
    "FIELD_NAMES",
    "LAYER_NAME",
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_SKIPPED_NODATA",
    "Chip",
    "ChipGrid",
    "RasterGrid",
    "Stretch",
    "compute_stretch",
    "make_record",
    "nodata_fraction",
    "padded_valid_mask",
    "parse_tile_id",
    "valid_mask",
]
