"""CCExpert change captioning for QGIS. ``classFactory`` imports nothing heavy and opens no connection."""


def classFactory(iface):  # noqa: N802 - QGIS plugin entry point
    from .plugin import CCExpertPlugin

    return CCExpertPlugin(iface)
