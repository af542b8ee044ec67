"""Planning a run of ``describe_changes`` without the network (the algorithm and the dialog's confirmation share it):
the parameters read once (:class:`DescribeParameters`), then :func:`make_plan`: the rasters opened and checked
(``reader``), the area described in the Before CRS (``area``: the overlap, an extent such as the map canvas, a
polygon layer), the chip grid laid over it once and its chips counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsRectangle,
)

from .about import tr
from .area import described_area
from .core.context import check_context
from .core.driver import RunOptions
from .core.grid import Bounds, Chip, ChipGrid
from .core.sources import same_imagery
from .reader import PairReader, open_pair


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
    """What a run will do, computed without touching the network: the pair to read, the chip grid laid over the
    described area and the chips it keeps there."""

    reader: PairReader
    grid: ChipGrid
    bounds: Bounds
    keep: Callable[[Chip], bool] | None
    count: int
    crs_wkt: str
    aoi_wkt: str | None = None  # the area of interest in the Before CRS, for the run metadata (the report outlines it)

    def chips(self) -> Iterator[Chip]:
        """The run's chips in grid order, streamed (the grid's ``chips`` over the plan's bounds and AOI)."""
        return self.grid.chips(self.bounds, self.keep)


def make_plan(
    params: DescribeParameters, context: QgsProcessingContext, feedback: QgsProcessingFeedback, out_size: int
) -> Plan:
    """Check the inputs and lay the run out, entering each module once, in the order of the run's checks: both
    layers GDAL rasters, Before = After refused (``core.sources``), the pair opened and checked with AFTER placed
    on BEFORE's pixels (``reader.open_pair``), the area described in the Before CRS (``area.described_area``:
    rasters that do not overlap, an extent or area of interest outside them refused), then the chip grid laid over
    that area (a raster smaller than one chip refused) and its chips counted. QgsProcessingException otherwise."""
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
        reader = open_pair(before_layer.source(), after_layer.source(), params.bands, out_size, log=feedback.pushInfo)
    except ValueError as exc:  # RasterInputError: the message names the raster
        raise QgsProcessingException(str(exc)) from exc
    area = described_area(reader, params.extent, params.extent_crs, params.aoi, context, feedback)
    try:  # once the area is known: a raster smaller than one chip names the chip size that fits
        grid = ChipGrid(reader.grid, params.chip_size or out_size, params.overlap)
    except ValueError as exc:
        raise QgsProcessingException(str(exc)) from exc
    count = grid.count(area.bounds, area.keep)
    if count == 0:
        raise QgsProcessingException(tr("The area of interest covers no chip of the BEFORE raster"))
    return Plan(reader, grid, area.bounds, area.keep, count, reader.before.GetSpatialRef().ExportToWkt(), area.wkt)
