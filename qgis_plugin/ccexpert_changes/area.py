"""The area a ``describe_changes`` run describes, in the Before CRS: where both rasters overlap, cut to the extent
(such as the map canvas) and to the area of interest's polygons. The plugin's side of the rule ``ccexpert
describe`` follows (``ccexpert.aoi``); ``planning.make_plan`` asks it once, after the pair is open and before the
chip grid is laid over what it returns."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsRectangle,
)

from .about import tr
from .compat import POLYGON_GEOMETRY
from .core.grid import Bounds, Chip
from .reader import PairReader


@dataclass(frozen=True)
class DescribedArea:
    """The bounds the chip grid is laid over; ``keep(chip)`` for the chips an area of interest touches (None: every
    chip in the bounds); the area of interest's WKT for the run metadata (the report outlines it), or None."""

    bounds: Bounds
    keep: Callable[[Chip], bool] | None = None
    wkt: str | None = None


def described_area(
    reader: PairReader,
    extent: QgsRectangle | None,
    extent_crs: QgsCoordinateReferenceSystem | None,
    aoi,  # QgsProcessingFeatureSource | None
    context: QgsProcessingContext,
    feedback: QgsProcessingFeedback,
) -> DescribedArea:
    """Refuse rasters that do not overlap, then cut their overlap to ``extent`` and to the union of ``aoi``'s
    polygons, each refused when nothing is left; QgsProcessingException naming what does not overlap."""
    before_crs = QgsCoordinateReferenceSystem(reader.before.GetSpatialRef().ExportToWkt())
    after_crs = QgsCoordinateReferenceSystem(reader.after_src.GetSpatialRef().ExportToWkt())
    before_rect = QgsRectangle(*reader.grid.bounds)
    after_rect = QgsRectangle(*reader.after_grid.bounds)
    if after_crs != before_crs:
        transform = QgsCoordinateTransform(after_crs, before_crs, context.transformContext())
        after_rect = transform.transformBoundingBox(after_rect)
    overlap_rect = before_rect.intersect(after_rect)
    if overlap_rect.isEmpty() or overlap_rect.width() <= 0 or overlap_rect.height() <= 0:
        raise QgsProcessingException(
            tr(
                "BEFORE and AFTER rasters do not overlap (BEFORE {0}, AFTER {1} in the BEFORE CRS); pick a "
                "co-registered pair of the same place"
            ).format(before_rect.toString(3), after_rect.toString(3))
        )
    area = overlap_rect
    if extent is not None and not extent.isNull() and not extent.isEmpty():
        if extent_crs is not None and extent_crs.isValid() and extent_crs != before_crs:
            extent = QgsCoordinateTransform(extent_crs, before_crs, context.transformContext()).transformBoundingBox(
                extent
            )
        if not extent.isNull() and not extent.isEmpty():
            area = area.intersect(extent)
            if area.isEmpty() or area.width() <= 0 or area.height() <= 0:
                raise QgsProcessingException(
                    tr("The extent {0} does not overlap the area covered by both rasters ({1}, Before CRS)").format(
                        extent.toString(3), overlap_rect.toString(3)
                    )
                )
    if aoi is None:
        return DescribedArea((area.xMinimum(), area.yMinimum(), area.xMaximum(), area.yMaximum()))
    geometry = _aoi_geometry(aoi, before_crs, context, feedback, within=area)
    geometry = geometry.intersection(QgsGeometry.fromRect(area))
    if geometry.isEmpty() or geometry.area() <= 0:
        raise QgsProcessingException(
            tr("The area of interest does not intersect the area where BEFORE and AFTER overlap")
        )
    box = geometry.boundingBox()
    bounds = (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum())
    return DescribedArea(bounds, _touches(geometry), geometry.asWkt())


def _aoi_geometry(source, target_crs, context, feedback, within: QgsRectangle | None = None) -> QgsGeometry:
    """Union of the AOI features (selection honoured by the parameter) in ``target_crs``, with the rule of
    ``ccexpert describe`` (``ccexpert.aoi``): a coordinate that is not a number is refused naming the feature; an
    invalid polygon (a self-intersecting bow-tie) is repaired with ``makeValid`` (GEOS MakeValid, which keeps every
    lobe), its polygons kept, and a warning says so; the AOI is clipped to ``within`` (the rasters' footprint in
    ``target_crs``) in its own CRS before it is projected, so a whole-globe AOI in degrees still projects."""
    source_crs = source.sourceCrs()
    to_target = QgsCoordinateTransform(source_crs, target_crs, context.transformContext())
    parts = []
    for feature in source.getFeatures(QgsFeatureRequest()):
        if feedback.isCanceled():
            raise QgsProcessingException(tr("Canceled."))
        geometry = feature.geometry()
        if not geometry or geometry.isEmpty():
            continue
        if any(not (math.isfinite(v.x()) and math.isfinite(v.y())) for v in geometry.vertices()):
            raise QgsProcessingException(
                tr(
                    "The area of interest, feature {0}, has a coordinate that is not a number: "
                    "fix or remove that vertex"
                ).format(feature.id())
            )
        if not geometry.isGeosValid():
            reason = geometry.validateGeometry(Qgis.GeometryValidationEngine.Geos)
            geometry = _polygons(geometry.makeValid())
            feedback.pushWarning(
                tr(
                    "The area of interest, feature {0}, is not a valid polygon ({1}): repaired, keeping every part "
                    "it encloses (area {2:.6g} in its CRS units)"
                ).format(feature.id(), "; ".join(e.what() for e in reason) or "invalid", geometry.area())
            )
        parts.append(geometry)
    if not parts:
        raise QgsProcessingException(tr("The area of interest has no polygon (no features, or none selected)"))
    aoi = QgsGeometry.unaryUnion(parts)
    if source_crs != target_crs:
        if within is not None:
            margin = max(within.width(), within.height()) * 0.05
            footprint = within.buffered(margin)
            try:
                clip = to_target.transformBoundingBox(footprint, Qgis.TransformDirection.Reverse)
                aoi = aoi.intersection(QgsGeometry.fromRect(clip))
            except QgsCsException:
                pass  # the footprint cannot be expressed in the AOI's CRS: project the whole AOI
        try:
            aoi.transform(to_target)
        except QgsCsException as exc:
            raise QgsProcessingException(
                tr("The area of interest cannot be projected into the BEFORE raster's CRS ({0})").format(str(exc))
            ) from exc
    return aoi


def _polygons(geometry: QgsGeometry) -> QgsGeometry:
    """The polygonal parts of a repaired geometry (makeValid can return a collection with stray lines)."""
    if geometry.type() == POLYGON_GEOMETRY and not geometry.isMultipart():
        return geometry
    polys = [g for g in geometry.asGeometryCollection() if g.type() == POLYGON_GEOMETRY]
    return QgsGeometry.unaryUnion(polys) if polys else QgsGeometry()


def _touches(aoi: QgsGeometry):
    """``keep(chip)``: the chip's footprint touches the AOI (prepared geometry, built once)."""
    engine = QgsGeometry.createGeometryEngine(aoi.constGet())
    engine.prepareGeometry()

    def keep(chip: Chip, _engine=engine, _aoi=aoi) -> bool:  # _aoi keeps the engine's geometry alive
        rect = QgsGeometry.fromRect(QgsRectangle(*chip.bounds))
        return _engine.intersects(rect.constGet())

    return keep
