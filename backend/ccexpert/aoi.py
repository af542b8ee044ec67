"""Checks and repairs of an area of interest for ``ccexpert describe`` (shapely, pyproj), with the same rule as the
plugin's ``planning._aoi_geometry`` (QGIS ``makeValid``):

- a coordinate that is not a finite number is refused, naming the feature;
- an invalid polygon (a self-intersecting "bow-tie", a ring drawn twice) is repaired with GEOS ``MakeValid``
  (shapely ``make_valid``, the "linework" method QGIS uses too), which keeps every lobe, and only its polygonal
  parts are kept; a warning says so. ``buffer(0)``, used before, dropped one lobe of a bow-tie;
- before the AOI is projected into the rasters' CRS it is clipped to the rasters' footprint (in the AOI's own
  CRS): a whole-globe EPSG:4326 AOI cannot be projected into UTM, and only the part over the rasters matters.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import shapely
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

Bounds = tuple[float, float, float, float]
CLIP_MARGIN = 0.05  # share of the footprint's size added around it before clipping (the projected box is curved)


def check_finite(geometry: BaseGeometry, where: str) -> None:
    """ValueError when a coordinate is NaN or infinite (GEOS would give silent nonsense or fail later)."""
    coords = shapely.get_coordinates(geometry)
    if coords.size and not np.isfinite(coords).all():
        bad = coords[~np.isfinite(coords).all(axis=1)][0]
        raise ValueError(
            f"{where} has a coordinate that is not a number ({bad[0]}, {bad[1]}): fix or remove that vertex"
        )


def polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """The polygons of a geometry (a repaired bow-tie can come back as a collection with stray lines)."""
    parts = [g for g in getattr(geometry, "geoms", [geometry]) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def repair(geometry: BaseGeometry, where: str) -> BaseGeometry:
    """``geometry`` if valid, else its ``make_valid`` repair (polygonal parts only), with a warning naming the
    area kept: the repair keeps every lobe of a self-intersecting polygon."""
    if geometry.is_valid:
        return geometry
    reason = shapely.is_valid_reason(geometry)
    fixed = polygonal(shapely.make_valid(geometry, method="linework"))
    log.warning(
        "%s is not a valid polygon (%s): repaired, keeping every part it encloses (area %.6g in its CRS units)",
        where,
        reason,
        fixed.area,
    )
    return fixed


def clip_to_footprint(aoi: BaseGeometry, aoi_crs: ProjCRS, footprint: Bounds, footprint_crs: ProjCRS) -> BaseGeometry:
    """``aoi`` (in ``aoi_crs``) clipped to ``footprint`` (in ``footprint_crs``) plus a margin, in ``aoi_crs``."""
    if aoi_crs == footprint_crs:
        return aoi.intersection(box(*footprint))
    xmin, ymin, xmax, ymax = footprint
    dx, dy = (xmax - xmin) * CLIP_MARGIN, (ymax - ymin) * CLIP_MARGIN
    transformer = Transformer.from_crs(footprint_crs, aoi_crs, always_xy=True)
    clip = transformer.transform_bounds(xmin - dx, ymin - dy, xmax + dx, ymax + dy, densify_pts=21)
    if not all(math.isfinite(v) for v in clip):
        return aoi
    if aoi_crs.is_geographic and clip[0] > clip[2]:  # the footprint crosses the antimeridian: keep both sides
        return aoi.intersection(box(clip[0], clip[1], 180.0, clip[3]).union(box(-180.0, clip[1], clip[2], clip[3])))
    return aoi.intersection(box(*clip))


def aoi_wkt(area: BaseGeometry, pixel: float) -> str:
    """The described area as compact WKT for the run metadata (the report outlines it): simplified to half a pixel
    (in the before CRS's units), so a detailed AOI does not bloat the GeoPackage."""
    return shapely.to_wkt(area.simplify(pixel / 2))
