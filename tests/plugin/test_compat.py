"""compat.py on the running QGIS: the scoped Qgis names where this release has them, the old names otherwise, and
the same values either way (3.22 here; 3.40/3.44 in scripts/qgis_matrix.sh; QGIS 4 only statically)."""

from __future__ import annotations

from ccexpert_changes import compat
from qgis.core import Qgis, QgsProcessing, QgsProcessingAlgorithm, QgsProcessingParameterDefinition
from qgis.gui import QgsProcessingParametersGenerator


def test_enum_choices_match_this_release():
    if hasattr(Qgis, "ProcessingSourceType"):
        assert compat.VECTOR_POLYGON is Qgis.ProcessingSourceType.VectorPolygon
        assert compat.CAN_CANCEL is Qgis.ProcessingAlgorithmFlag.CanCancel
        assert compat.ADVANCED is Qgis.ProcessingParameterFlag.Advanced
    else:  # QGIS 3.22-3.34: the enums of the classes themselves
        assert QgsProcessing.TypeVectorPolygon == compat.VECTOR_POLYGON
        assert QgsProcessingAlgorithm.FlagCanCancel == compat.CAN_CANCEL
        assert QgsProcessingParameterDefinition.FlagAdvanced == compat.ADVANCED
    assert compat.INTEGER != compat.DOUBLE
    assert int(compat.single_feature_target()) == 2  # SingleFeature in every release (Layer = 1, Multiple = 4)


class RecordingDialog:
    """Stands in for AlgorithmDialog: records how createProcessingParameters was called."""

    def __init__(self):
        self.calls: list[tuple[tuple, dict]] = []

    def createProcessingParameters(self, *args, **kwargs):  # QGIS API name
        self.calls.append((args, kwargs))
        return {"BEFORE": "b.tif"}


def test_parameters_without_defaults_uses_this_releases_signature():
    dialog = RecordingDialog()
    assert compat.parameters_without_defaults(dialog) == {"BEFORE": "b.tif"}
    if hasattr(QgsProcessingParametersGenerator, "Flag"):  # QGIS >= 3.24: (flags)
        assert dialog.calls == [((QgsProcessingParametersGenerator.Flag.SkipDefaultValueParameters,), {})]
    else:  # QGIS 3.22: (include_default=True)
        assert dialog.calls == [((), {"include_default": False})]
