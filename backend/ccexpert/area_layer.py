"""Layer ``change_areas`` of a describe output (issue 27): the grouping of ``core.areas``, each group's tiles
dissolved into one polygon with shapely, written with fiona next to ``change_captions`` in the same GeoPackage.

Rewritten from all the tiles each time (a resumed run's areas cover the tiles of every run)."""

from __future__ import annotations

from pathlib import Path

import fiona
from ccexpert_changes.core.areas import AREA_FIELDS, AREAS_LAYER_NAME, areas_style, group_areas
from ccexpert_changes.core.grid import ChipGrid, parse_tile_id
from ccexpert_changes.core.style_table import write_default_style
from shapely.geometry import box, mapping
from shapely.ops import unary_union

from .gpkg_output import read_tiles

_OGR_TYPES = {"str": "str", "int": "int", "real": "float"}
SCHEMA = {"geometry": "MultiPolygon", "properties": {name: _OGR_TYPES[kind] for name, kind in AREA_FIELDS}}


def write_change_areas(path: str | Path, grid: ChipGrid | None = None) -> int:
    """(Re)write layer ``change_areas`` of the describe output at ``path`` from its tiles; the number of areas.
    ``grid``: the run's chip grid, so that objects in the overlap of two chips are counted once (the polygons are
    the parts the tiles own, which do not overlap).

    Tiles are dissolved with shapely's ``unary_union`` of their boxes: overlapping chips merge into one outline,
    chips that only touch share their edge. Each area is a MultiPolygon (one part in practice)."""
    tiles, crs_wkt = read_tiles(path)
    by_id = {t["tile_id"]: t for t in tiles}
    if grid is not None:
        for tile in tiles:
            row, col, _ = parse_tile_id(tile["tile_id"])
            tile["chip_bounds"] = grid.chip(row, col).bounds
    areas = group_areas(tiles)
    if AREAS_LAYER_NAME in fiona.listlayers(path):
        fiona.remove(str(path), layer=AREAS_LAYER_NAME, driver="GPKG")
    with fiona.open(path, "w", driver="GPKG", layer=AREAS_LAYER_NAME, schema=SCHEMA, crs_wkt=crs_wkt) as dst:
        for area in areas:
            shape = unary_union([box(*by_id[tile_id]["bounds"]) for tile_id in area.tile_ids])
            geometry = mapping(shape)
            if shape.geom_type == "Polygon":
                geometry = {"type": "MultiPolygon", "coordinates": [geometry["coordinates"]]}
            dst.write({"geometry": geometry, "properties": area.record()})
    write_default_style(path, AREAS_LAYER_NAME, areas_style())
    return len(areas)
