"""Planning a run of ``describe_changes`` without the network (the algorithm and the dialog's confirmation share it):
the parameters read once (:class:`DescribeParameters`), the rasters opened and checked, the area of interest (a
polygon layer and/or an extent such as the map canvas) in the Before CRS, the chip grid and the chip count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsRectangle,
)

from .about import tr
from .core.driver import RunOptions
from .core.fields import same_imagery
from .core.grid import Bounds, Chip, ChipGrid
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
        except Exception:  # noqa: BLE001 - a source QGIS cannot resolve to a layer is not a file to protect
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
            output=alg.parameterAsOutputLayer(parameters, alg.OUTPUT, context),
        )


@dataclass
class Plan:
    """What a run will do, computed without touching the network."""

    reader: PairReader
    grid: ChipGrid
    bounds: Bounds
    keep: Callable[[Chip], bool] | None
    count: int
    crs_wkt: str


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
        grid = ChipGrid(reader.grid, chip_size, overlap)
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
        aoi = _aoi_geometry(source, before_crs, context, feedback)
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
    return Plan(reader, grid, bounds, keep_chip, count, before_ds.GetSpatialRef().ExportToWkt())


def _aoi_geometry(source, target_crs, context, feedback) -> QgsGeometry:
    """Union of the AOI features (selection honoured by the parameter) in ``target_crs``."""
    request = QgsFeatureRequest().setDestinationCrs(target_crs, context.transformContext())
    parts = []
    for feature in source.getFeatures(request):
        if feedback.isCanceled():
            raise QgsProcessingException(tr("Canceled."))
        geometry = feature.geometry()
        if geometry and not geometry.isEmpty():
            parts.append(geometry.makeValid() if not geometry.isGeosValid() else geometry)
    if not parts:
        raise QgsProcessingException(tr("The area of interest has no polygon (no features, or none selected)"))
    return QgsGeometry.unaryUnion(parts)


def _touches(aoi: QgsGeometry):
    """``keep(chip)``: the chip's footprint touches the AOI (prepared geometry, built once)."""
    engine = QgsGeometry.createGeometryEngine(aoi.constGet())
    engine.prepareGeometry()

    def keep(chip: Chip, _engine=engine, _aoi=aoi) -> bool:  # _aoi keeps the engine's geometry alive
        rect = QgsGeometry.fromRect(QgsRectangle(*chip.bounds))
        return _engine.intersects(rect.constGet())

    return keep
