"""Plugin entry point: lazy classFactory, GUI wiring, provider registration and unload."""

from __future__ import annotations

import subprocess
import sys

from qgis.core import QgsApplication


def test_class_factory_imports_nothing_heavy():
    code = (
        "import sys; sys.path.insert(0, 'qgis_plugin'); import ccexpert_changes; "
        "heavy = [m for m in ('qgis.core', 'osgeo.gdal', 'numpy', 'torch', 'requests') if m in sys.modules]; "
        "print(heavy)"
    )
    from conftest import REPO

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_init_gui_registers_the_provider_and_action_then_unloads(qgis_app, qgis_iface, qgis_processing):
    import ccexpert_changes

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("ccexpert")
    if existing is not None:  # registered by another test module: start from a clean state
        registry.removeProvider(existing)
    plugin = ccexpert_changes.classFactory(qgis_iface)
    plugin.initGui()
    try:
        provider = registry.providerById("ccexpert")
        assert provider is not None
        alg = registry.algorithmById("ccexpert:describe_changes")
        assert alg is not None and alg.displayName() == "Describe changes"
        names = [p.name() for p in alg.parameterDefinitions()]
        for expected in (
            "BEFORE",
            "AFTER",
            "AOI",
            "BANDS",
            "CHIP_SIZE",
            "OVERLAP",
            "MAX_NODATA",
            "BACKEND_URL",
            "AUTHCFG",
            "BATCH_SIZE",
            "RESUME",
            "OUTPUT",
        ):
            assert expected in names
        assert alg.parameterDefinition("AOI").flags() & alg.parameterDefinition("AOI").Flag.FlagOptional
        assert provider.defaultVectorFileExtension(True) == "gpkg"
        assert [a.text() for a in plugin.actions] == ["Describe changes", "Create report…", "Settings…", "Help"]
        assert alg.helpUrl().endswith("#in-qgis")
    finally:
        plugin.unload()
    assert registry.providerById("ccexpert") is None and plugin.actions == []
