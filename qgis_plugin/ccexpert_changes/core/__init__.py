"""Qt-free core of the plugin, also imported by ``ccexpert describe``: chip grid, output fields, 8-bit stretch, and the
run shared by both front ends: the chip loop (``run_loop``), the run driver (``driver``: settings from ``/v1/info``,
the keep rule, ``drive``), the output contract (``output_contract``: resume policy, layer counts; ``output_lock``: one
run per output), the clients' retry policy (``retry``), the layer's style table and abstract.

Pure Python + numpy (stdlib sqlite3 for reading GeoPackages): QGIS's Python can import it, and so can the backend
without QGIS. This ``__init__`` re-exports the grid, fields and stretch names; import the other modules by name.
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
