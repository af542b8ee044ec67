"""Loading the result: the shipped QML style (changed tiles highlighted, caption as label and map tip) and a
named layer group. Runs in the main thread (Processing's post-processing step)."""

from __future__ import annotations

from qgis.core import Qgis, QgsMessageLog, QgsProcessingLayerPostProcessorInterface, QgsProject, QgsVectorLayer

from .about import LOG_TAG, style_path, tr

GROUP_NAME = "CCExpert changes"


def apply_style(layer: QgsVectorLayer) -> bool:
    message, ok = layer.loadNamedStyle(style_path())
    if not ok:
        QgsMessageLog.logMessage(tr("Could not apply the change caption style: {0}").format(message), LOG_TAG,
                                 Qgis.MessageLevel.Warning)
    layer.triggerRepaint()
    return bool(ok)


def move_to_group(layer: QgsVectorLayer, project: QgsProject, group_name: str = GROUP_NAME) -> None:
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    group = root.findGroup(tr(group_name)) or root.insertGroup(0, tr(group_name))
    if node is None:
        group.addLayer(layer)
        return
    if node.parent() is group:
        return
    group.insertChildNode(0, node.clone())
    node.parent().removeChildNode(node)


class ChangeLayerPostProcessor(QgsProcessingLayerPostProcessorInterface):
    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API name
        if not isinstance(layer, QgsVectorLayer):
            return
        apply_style(layer)
        move_to_group(layer, context.project() or QgsProject.instance())
