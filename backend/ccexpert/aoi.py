"""Checks and repairs of an area of interest for ``ccexpert describe`` (shapely, pyproj), with the same rule as the
plugin's ``area._aoi_geometry`` (QGIS ``makeValid``):

- a coordinate that is not a finite number is refused, naming the feature;
- an invalid polygon (a self-intersecting "bow-tie", a ring drawn twice) is repaired with GEOS ``MakeValid``
  (shapely ``make_valid``, the "linework" method QGIS uses too), which keeps every lobe, and only its polygonal
  parts are kept; a warning says so. ``buffer(0)``, used before, dropped one lobe of a bow-tie;
- before the AOI is projected into the rasters' CRS it is clipped to the rasters' footprint (in the AOI's own
  CRS): a whole-globe EPSG:4326 AOI cannot be projected into UTM, and only the part over the rasters matters.

:func:`described_area` is describe's one way in (``raster_io.open_pair`` calls it): the AOI file read
(:func:`load_aoi`, fiona), repaired, clipped, projected, and cut to the rasters' common footprint, with the WKT the
run metadata keeps.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import shapely
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

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


def load_aoi(path: str, layer: str | None, target_crs, within: Bounds | None = None) -> BaseGeometry:
    """Union of the AOI polygons, transformed to ``target_crs`` (a rasterio CRS); ValueError naming what is wrong.
    Invalid polygons are repaired keeping their whole area and coordinates that are not numbers refused (the
    plugin's rule); ``within`` (bounds in ``target_crs``: the rasters' footprint) clips the AOI before it is
    projected, so an AOI far larger than the rasters (the whole globe in degrees) still projects."""
    import fiona

    try:
        with fiona.open(path, layer=layer) as src:
            crs_wkt = src.crs_wkt
            geoms = [(i, shape(f.geometry)) for i, f in enumerate(src, 1) if f.geometry is not None]
    except (fiona.errors.DriverError, fiona.errors.FionaValueError, ValueError) as exc:
        raise ValueError(f"AOI {path}: cannot read ({exc})") from None
    polys = [(i, g) for i, g in geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not polys:
        raise ValueError(f"AOI {path}: no polygon features (found {len(geoms)} geometries)")
    if not crs_wkt:
        raise ValueError(f"AOI {path}: layer has no CRS")
    for i, g in polys:
        check_finite(g, f"AOI {path}, feature {i},")
    aoi = unary_union([repair(g, f"AOI {path}, feature {i},") for i, g in polys])
    src_crs, dst_crs = ProjCRS.from_user_input(crs_wkt), ProjCRS.from_user_input(target_crs.to_wkt())
    if within is not None:
        aoi = clip_to_footprint(aoi, src_crs, within, dst_crs)
        if aoi.is_empty:
            raise ValueError(f"AOI {path} does not overlap the area covered by both rasters")
    if src_crs != dst_crs:
        # densify first so long straight edges follow the projection's curvature
        minx, miny, maxx, maxy = aoi.bounds
        aoi = aoi.segmentize(max(maxx - minx, maxy - miny) / 64 or 1.0)
        transformer = Transformer.from_crs(src_crs, dst_crs, always_xy=True)
        aoi = shapely.transform(aoi, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
        log.info("AOI transformed from %s to %s", src_crs.to_string(), dst_crs.to_string())
        check_finite(aoi, f"AOI {path} projected into {dst_crs.to_string()}")
    if not aoi.is_valid:
        aoi = polygonal(shapely.make_valid(aoi, method="linework"))
    return aoi


def described_area(
    path: str | None, layer: str | None, crs, footprint: Bounds, pixel: float
) -> tuple[BaseGeometry, str | None]:
    """The area a run describes, in ``crs`` (the before raster's): the rasters' common ``footprint``, cut to the AOI
    at ``path`` when there is one (ValueError when they do not overlap), and that area's WKT for the run metadata
    (``pixel``: the before raster's pixel size; None without an AOI: the whole footprint is described)."""
    area = box(*footprint)
    if not path:
        return area, None
    area = load_aoi(path, layer, crs, footprint).intersection(area)
    if area.is_empty or area.area == 0:
        raise ValueError(f"AOI {path} does not overlap the area covered by both rasters")
    return area, aoi_wkt(area, pixel)
