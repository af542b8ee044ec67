"""Planning a run of ``describe_changes`` without the network (the algorithm and the dialog's confirmation share it):
the parameters read once (:class:`DescribeParameters`), the rasters opened and checked, the area of interest (a
polygon layer and/or an extent such as the map canvas) in the Before CRS, the chip grid and the chip count."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from .core.context import check_context
from .core.driver import RunOptions
from .core.grid import Bounds, Chip, ChipGrid
from .core.sources import same_imagery
from .reader import PairReader, RasterInputError, default_bands, open_raster, raster_grid

DEFAULT_BANDS = [1, 2, 3]


@dataclass(kw_only=True)
class DescribeParameters(RunOptions):
    """Every parameter of ``describe_changes``, read once (:meth:`read`); the run options are the ones ``ccexpert
    describe`` has (``core.driver.RunOptions``). Layers stay QGIS objects: only the task opens their sources."""

    before: Any  # QgsRasterLayer | None
    after: Any
    aoi: Any = None  # QgsProcessingFeatureSource | None
    aoi_path: str | None = None  # the AOI's file, when it is one (an output must not be it)
    extent: QgsRectangle | None = None
    extent_crs: QgsCoordinateReferenceSystem | None = None
    bands: list[int] | None = None
    backend_url: str = ""
    authcfg: str = ""
    output: str = ""
    areas: bool = True  # the change-areas layer beside the tiles

    @classmethod
    def read(cls, alg: Any, parameters: dict, context: QgsProcessingContext) -> DescribeParameters:
        """Parse ``parameters`` with the algorithm's definitions, each once. Parameter names are the algorithm's."""
        extent = extent_crs = None
        if parameters.get(alg.EXTENT) not in (None, ""):
            extent = alg.parameterAsExtent(parameters, alg.EXTENT, context)
            extent_crs = alg.parameterAsExtentCrs(parameters, alg.EXTENT, context)
        aoi_path = None
        try:
            aoi_layer = alg.parameterAsVectorLayer(parameters, alg.AOI, context)
            aoi_path = aoi_layer.source() if aoi_layer is not None else None
        except Exception:  # a source QGIS cannot resolve to a layer is not a file to protect
            aoi_path = None
        return cls(
            before=alg.parameterAsRasterLayer(parameters, alg.BEFORE, context),
            after=alg.parameterAsRasterLayer(parameters, alg.AFTER, context),
            aoi=alg.parameterAsSource(parameters, alg.AOI, context),
            aoi_path=aoi_path,
            extent=extent,
            extent_crs=extent_crs,
            bands=alg.parameterAsInts(parameters, alg.BANDS, context) or None,
            chip_size=alg.parameterAsInt(parameters, alg.CHIP_SIZE, context) or None,
            overlap=alg.parameterAsInt(parameters, alg.OVERLAP, context),
            max_nodata=alg.parameterAsDouble(parameters, alg.MAX_NODATA, context),
            batch_size=alg.parameterAsInt(parameters, alg.BATCH_SIZE, context) or None,
            in_flight=alg.parameterAsInt(parameters, alg.IN_FLIGHT, context) or None,
            max_chips=alg.parameterAsInt(parameters, alg.MAX_CHIPS, context),
            resume=alg.parameterAsBoolean(parameters, alg.RESUME, context),
            force=alg.parameterAsBoolean(parameters, alg.RESUME_FORCE, context),
            backend_url=alg.parameterAsString(parameters, alg.BACKEND_URL, context),
            authcfg=alg.parameterAsString(parameters, alg.AUTHCFG, context),
            areas=alg.parameterAsBoolean(parameters, alg.AREAS, context),
            output=alg.parameterAsOutputLayer(parameters, alg.OUTPUT, context),
            context_note=context_note(alg.parameterAsString(parameters, alg.CONTEXT, context)),
        )


def context_note(text: str | None) -> str | None:
    """The CONTEXT parameter by the rule ``ccexpert describe --context`` and the API share (``core.context``);
    QgsProcessingException when it cannot be sent, so the run is refused before anything is written."""
    try:
        return check_context(text)
    except ValueError as exc:
        raise QgsProcessingException(tr("Context note: {0}").format(str(exc))) from None


@dataclass
class Plan:
    """What a run will do, computed without touching the network."""

    reader: PairReader
    grid: ChipGrid
    bounds: Bounds
    keep: Callable[[Chip], bool] | None
    count: int
    crs_wkt: str
    aoi_wkt: str | None = None  # the area of interest in the Before CRS, for the run metadata (the report outlines it)


def make_plan(
    params: DescribeParameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback, out_size: int
) -> Plan:
    """Open both rasters, refuse Before = After, check they overlap, bring the AOI and/or extent into the Before
    CRS, lay the chip grid and count the chips."""
    before_layer, after_layer = params.before, params.after
    for label, layer in (("BEFORE", before_layer), ("AFTER", after_layer)):
        if layer is None:
            raise QgsProcessingException(tr("{0} raster is missing or cannot be loaded").format(label))
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                tr("{0} raster must be a GDAL-readable file, not a {1} layer").format(label, layer.providerType())
            )
    if same_imagery(before_layer.source(), after_layer.source()):
        raise QgsProcessingException(
            tr(
                "Before and After are the same raster ({0}): nothing can have changed. Pick the earlier image "
                "as Before and the later one as After."
            ).format(before_layer.source().split("|")[0])
        )
    try:
        before_ds = open_raster(before_layer.source(), "BEFORE")
        after_ds = open_raster(after_layer.source(), "AFTER")
        bands = params.bands or default_bands(before_ds)
        if bands == DEFAULT_BANDS and before_ds.RasterCount < 3:  # the shown default on a one-band raster
            bands = default_bands(before_ds)
        chip_size = params.chip_size or out_size
        overlap = params.overlap
        reader = PairReader(before_ds, after_ds, bands, out_size, log=feedback.pushInfo)
    except (RasterInputError, ValueError) as exc:
        raise QgsProcessingException(str(exc)) from exc

    before_crs = QgsCoordinateReferenceSystem(before_ds.GetSpatialRef().ExportToWkt())
    after_crs = QgsCoordinateReferenceSystem(after_ds.GetSpatialRef().ExportToWkt())
    before_rect = QgsRectangle(*reader.grid.bounds)
    after_rect = QgsRectangle(*raster_grid(after_ds, "AFTER").bounds)
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
    try:  # after the overlap check: rasters that do not overlap are the more basic mistake
        grid = ChipGrid(reader.grid, chip_size, overlap)
    except ValueError as exc:  # a raster smaller than one chip names the chip size that fits
        raise QgsProcessingException(str(exc)) from exc
    keep_chip = None
    area = overlap_rect
    if params.extent is not None and not params.extent.isNull() and not params.extent.isEmpty():
        extent = params.extent
        if params.extent_crs is not None and params.extent_crs.isValid() and params.extent_crs != before_crs:
            extent = QgsCoordinateTransform(
                params.extent_crs, before_crs, context.transformContext()
            ).transformBoundingBox(extent)
        if not extent.isNull() and not extent.isEmpty():
            area = area.intersect(extent)
            if area.isEmpty() or area.width() <= 0 or area.height() <= 0:
                raise QgsProcessingException(
                    tr("The extent {0} does not overlap the area covered by both rasters ({1}, Before CRS)").format(
                        extent.toString(3), overlap_rect.toString(3)
                    )
                )
    source = params.aoi
    if source is not None:
        aoi = _aoi_geometry(source, before_crs, context, feedback, within=area)
        aoi = aoi.intersection(QgsGeometry.fromRect(area))
        if aoi.isEmpty() or aoi.area() <= 0:
            raise QgsProcessingException(
                tr("The area of interest does not intersect the area where BEFORE and AFTER overlap")
            )
        area = aoi.boundingBox()
        keep_chip = _touches(aoi)

    bounds = (area.xMinimum(), area.yMinimum(), area.xMaximum(), area.yMaximum())
    count = grid.count(bounds, keep_chip)
    if count == 0:
        raise QgsProcessingException(tr("The area of interest covers no chip of the BEFORE raster"))
    aoi_wkt = aoi.asWkt() if source is not None else None
    return Plan(reader, grid, bounds, keep_chip, count, before_ds.GetSpatialRef().ExportToWkt(), aoi_wkt)


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
