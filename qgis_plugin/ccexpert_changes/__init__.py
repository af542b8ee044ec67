"""CCExpert change captioning for QGIS. ``classFactory`` imports nothing heavy and opens no connection."""


def classFactory(iface):  # QGIS plugin entry point
    from .plugin import CCExpertPlugin

    return CCExpertPlugin(iface)
