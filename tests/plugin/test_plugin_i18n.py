"""Issue 25.13: the plugin ships a translation template generated from its tr() strings and a compiled .qm, and
loads the .qm of the QGIS locale with a QTranslator under the context its tr() uses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from qgis.PyQt.QtCore import QCoreApplication, QTranslator

I18N = Path(__file__).resolve().parents[2] / "qgis_plugin" / "ccexpert_changes" / "i18n"


def test_template_and_compiled_english_are_shipped(qgis_app):
    template = (I18N / "ccexpert_changes_en.ts").read_text(encoding="utf-8")
    assert "<name>CCExpert</name>" in template and "<source>Copy diagnostics</source>" in template
    assert "`" not in template  # GUI text is not Markdown
    translator = QTranslator()
    assert translator.load(str(I18N / "ccexpert_changes_en.qm")) and not translator.isEmpty()
    assert translator.translate("CCExpert", "Describe changes") == "Describe changes"


def test_the_plugin_loads_the_locale_translation_that_tr_uses(qgis_app, tmp_path, monkeypatch):
    lrelease = shutil.which("lrelease")
    if lrelease is None:
        pytest.skip("lrelease is not installed (qttools5-dev-tools)")
    from ccexpert_changes import plugin
    from ccexpert_changes.about import tr

    (tmp_path / "i18n").mkdir()
    ts = tmp_path / "i18n" / "ccexpert_changes_de.ts"
    ts.write_text(
        '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE TS><TS version="2.1" language="de"><context>'
        "<name>CCExpert</name><message><source>Describe changes</source>"
        "<translation>Änderungen beschreiben</translation></message></context></TS>",
        encoding="utf-8",
    )
    subprocess.run([lrelease, "-silent", str(ts), "-qm", str(ts.with_suffix(".qm"))], check=True, timeout=60)
    monkeypatch.setattr(plugin, "PLUGIN_DIR", str(tmp_path))
    assert plugin.translation_file("fr_FR") is None and plugin.load_translation("fr_FR") is None
    translator = plugin.load_translation("de_CH")  # falls back from de_CH to de
    try:
        assert translator is not None and tr("Describe changes") == "Änderungen beschreiben"
    finally:
        QCoreApplication.removeTranslator(translator)
    assert tr("Describe changes") == "Describe changes"


def test_plugin_manager_text_names_the_real_menu_and_every_release(qgis_app, qgis_iface, monkeypatch):
    """metadata.txt's about named "Plugins > CCExpert" while the actions live in the Raster menu, and its changelog
    listed 0.1.0 only."""
    import ccexpert_changes
    from ccexpert_changes.about import metadata

    about, changelog = metadata()["about"], metadata()["changelog"]
    assert "Plugins > CCExpert" not in about
    assert "Raster > CCExpert > Describe changes" in about and "Raster > CCExpert > Settings" in about
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    if registry.providerById("ccexpert") is not None:  # registered by another test module: start clean
        registry.removeProvider(registry.providerById("ccexpert"))
    plugin = ccexpert_changes.classFactory(qgis_iface)
    calls = []
    monkeypatch.setattr(
        qgis_iface, "addPluginToRasterMenu", lambda menu, action: calls.append((menu.replace("&", ""), action.text()))
    )
    monkeypatch.setattr(qgis_iface, "removePluginRasterMenu", lambda menu, action: None)
    plugin.initGui()
    try:
        assert ("CCExpert", "Settings…") in calls and ("CCExpert", "Describe changes") in calls
        assert ("CCExpert", "Help") in calls and "Raster > CCExpert > Help" in about
    finally:
        plugin.unload()
    lines = [line.strip() for line in changelog.splitlines() if line.strip()]
    assert lines[0] == "Unreleased" and "0.1.0" in lines and len(lines) >= 5
    assert all("`" not in line for line in lines) and "`" not in about


def test_the_template_holds_every_tr_string_of_the_plugin():
    """After changing tr() strings: python scripts/update_translations.py (rewrites the .ts and the .qm)."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "update_translations.py"
    done = subprocess.run(["python3", str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
