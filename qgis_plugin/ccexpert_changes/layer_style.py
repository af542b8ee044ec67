"""Loading the result: the shipped QML style (changed tiles outlined, caption as label sized in map units, map tip,
readable field aliases) and a named layer group; map tips are switched on in the main window so that hovering a tile
shows its caption, and the result becomes the active layer (map tips show for the active layer only). Runs in the
main thread (Processing's post-processing step)."""

from __future__ import annotations

from datetime import datetime

from qgis.core import Qgis, QgsMessageLog, QgsProcessingLayerPostProcessorInterface, QgsProject, QgsVectorLayer

from .about import LOG_TAG, style_path, tr
from .core.fields import FIELD_ALIASES
from .core.output_names import result_layer_name

GROUP_NAME = "CCExpert changes"


def apply_style(layer: QgsVectorLayer) -> bool:
    message, ok = layer.loadNamedStyle(style_path())
    if not ok:
        QgsMessageLog.logMessage(
            tr("Could not apply the change caption style: {0}").format(message), LOG_TAG, Qgis.MessageLevel.Warning
        )
    ensure_identification(layer)
    layer.triggerRepaint()
    return bool(ok)


def ensure_identification(layer: QgsVectorLayer) -> None:
    """What identify results, map tips and the attribute table show, whatever style the layer carries: the
    caption as display expression and map tip, and readable field aliases where the style sets none."""
    fields = layer.fields()
    if fields.indexOf("caption") < 0:
        return
    layer.setDisplayExpression('"caption"')  # QGIS would guess the first text field, the tile id
    if not layer.mapTipTemplate():
        layer.setMapTipTemplate('<b>[% "caption" %]</b><br/>[% "status" %]')
    for name, alias in FIELD_ALIASES.items():
        index = fields.indexOf(name)
        if index >= 0 and not layer.attributeAlias(index):
            layer.setFieldAlias(index, alias)


def enable_map_tips() -> None:
    """Switch the main window's "Show Map Tips" on (QGIS shows a layer's map tip only then)."""
    try:
        from qgis.utils import iface
    except ImportError:  # no GUI (qgis_process)
        return
    action = getattr(iface, "actionMapTips", None) if iface is not None else None
    if action is None:
        return
    try:
        action = action()
    except TypeError:
        return
    if action is not None and action.isCheckable() and not action.isChecked():
        action.trigger()


def make_active(layer: QgsVectorLayer) -> None:
    """Select the result in the Layers panel: QGIS shows map tips of the active layer only, so without this the
    tips stay silent until the analyst clicks the new layer. Nothing to do without a main window (qgis_process)."""
    try:
        from qgis.utils import iface
    except ImportError:
        return
    if iface is not None:
        iface.setActiveLayer(layer)


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
    """Runs once the result is in the project. It names the layer here: QGIS names a loaded file output after
    its file or table ("change_captions") unless the output is temporary (Processing's "prefer filename as layer
    name", on by default), and it does so before the post-processor runs."""

    def __init__(self, after_path: str | None = None, when: datetime | None = None):
        super().__init__()
        self.after_path, self.when = after_path, when or datetime.now()

    def postProcessLayer(self, layer, context, feedback):  # QGIS API name
        if not isinstance(layer, QgsVectorLayer):
            return
        project = context.project() or QgsProject.instance()
        taken = {other.name() for other in project.mapLayers().values() if other.id() != layer.id()}
        layer.setName(result_layer_name(self.after_path, self.when, taken, tr("Change captions")))
        apply_style(layer)
        move_to_group(layer, project)
        enable_map_tips()
        make_active(layer)
