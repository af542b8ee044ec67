"""The QGIS enum names the plugin uses, picked for the running release: QGIS 3.30/3.36 moved many enums into
``Qgis`` (``Qgis.ProcessingSourceType.VectorPolygon``...), 3.44 keeps the old names only as Python-added aliases,
and QGIS 4 (Qt 6) drops them, while QGIS 3.22, the oldest release the plugin supports, lacks the new ones.

Each choice is one ``if hasattr(Qgis, ...)`` or ``Qgis.versionInt()`` test so that ``scripts/qgis4_api.py`` can
tell which branch QGIS 4 takes and check only that branch's names against QGIS 4's API; the other branch holds the
QGIS 3.22 names (reported as "legacy", never as used on QGIS 4)."""

from __future__ import annotations

from qgis.core import Qgis

if hasattr(Qgis, "ProcessingSourceType"):  # QGIS >= 3.36
    VECTOR_POLYGON = Qgis.ProcessingSourceType.VectorPolygon
    CAN_CANCEL = Qgis.ProcessingAlgorithmFlag.CanCancel
    ADVANCED = Qgis.ProcessingParameterFlag.Advanced
    INTEGER = Qgis.ProcessingNumberParameterType.Integer
    DOUBLE = Qgis.ProcessingNumberParameterType.Double
else:  # QGIS 3.22-3.34
    from qgis.core import (
        QgsProcessing,
        QgsProcessingAlgorithm,
        QgsProcessingParameterDefinition,
        QgsProcessingParameterNumber,
    )

    VECTOR_POLYGON = QgsProcessing.SourceType.TypeVectorPolygon
    CAN_CANCEL = QgsProcessingAlgorithm.Flag.FlagCanCancel
    ADVANCED = QgsProcessingParameterDefinition.Flag.FlagAdvanced
    INTEGER = QgsProcessingParameterNumber.Type.Integer
    DOUBLE = QgsProcessingParameterNumber.Type.Double

if hasattr(Qgis, "LayerType"):  # QGIS >= 3.30
    VECTOR_LAYER = Qgis.LayerType.Vector
    POLYGON_GEOMETRY = Qgis.GeometryType.Polygon
else:  # QGIS 3.22-3.28
    from qgis.core import QgsMapLayerType, QgsWkbTypes

    VECTOR_LAYER = QgsMapLayerType.VectorLayer
    POLYGON_GEOMETRY = QgsWkbTypes.PolygonGeometry


def single_feature_target():
    """The map layer action target "one feature"; a function so that Processing runs never import qgis.gui."""
    if hasattr(Qgis, "MapLayerActionTarget"):  # QGIS >= 3.30
        return Qgis.MapLayerActionTarget.SingleFeature
    else:  # QGIS 3.22-3.28
        from qgis.gui import QgsMapLayerAction

        return QgsMapLayerAction.Target.SingleFeature


if Qgis.versionInt() >= 33800:  # QgsField takes QMetaType.Type from 3.38; QGIS 4 only that
    from qgis.PyQt.QtCore import QMetaType

    FIELD_TYPES = {"str": QMetaType.Type.QString, "int": QMetaType.Type.Int, "real": QMetaType.Type.Double}
else:
    from qgis.PyQt.QtCore import QVariant

    FIELD_TYPES = {"str": QVariant.Type.String, "int": QVariant.Type.Int, "real": QVariant.Type.Double}


def parameters_without_defaults(dialog) -> dict:
    """The values a Processing algorithm dialog holds, leaving out parameters at their defaults. QGIS 3.24 changed
    AlgorithmDialog.createProcessingParameters(include_default=True) to (flags); the old keyword is a TypeError on
    3.40 and 3.44."""
    from qgis.gui import QgsProcessingParametersGenerator

    if hasattr(QgsProcessingParametersGenerator, "Flag"):  # QGIS >= 3.24
        return dialog.createProcessingParameters(QgsProcessingParametersGenerator.Flag.SkipDefaultValueParameters)
    else:  # QGIS 3.22
        return dialog.createProcessingParameters(include_default=False)
