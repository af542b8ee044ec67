"""The plugin's source is ready for QGIS 4 (Qt 6), checked statically: only QGIS 3.22 runs on this machine, while
analysts run the 3.34-3.44 LTRs and QGIS 4. No PyQt5 import (only `qgis.PyQt`), Qt enums fully scoped
(`Qt.AlignmentFlag.AlignLeft`, not `Qt.AlignLeft`), none of the names Qt 6 removed, and `supportsQt6` declared in
metadata.txt exactly when this check passes."""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "qgis_plugin" / "ccexpert_changes"
QT_MODULES = ("qgis.PyQt.QtCore", "qgis.PyQt.QtGui", "qgis.PyQt.QtWidgets", "qgis.PyQt.QtNetwork")
REMOVED = {"QRegExp", "QDesktopWidget", "QStringList", "QStringListModel.setStringList", "exec_", "QMatrix"}


def qt_violations(source: str, filename: str = "<source>") -> list[str]:
    """Problems Qt 6 would have with `source`: PyQt5 imports, unscoped enums of Qt classes, removed names."""
    tree = ast.parse(source, filename)
    qt_names: set[str] = set()
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(("PyQt5", "PyQt6", "PySide")):
                problems.append(f"{filename}:{node.lineno}: imports {node.module} (use qgis.PyQt)")
            if node.module in QT_MODULES:
                qt_names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import) and any(a.name.startswith(("PyQt5", "PyQt6")) for a in node.names):
            problems.append(f"{filename}:{node.lineno}: imports PyQt directly (use qgis.PyQt)")
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in REMOVED:
                problems.append(f"{filename}:{node.lineno}: {node.attr} is gone in Qt 6")
            owner = node.value
            if (
                isinstance(owner, ast.Name)
                and owner.id in qt_names
                and node.attr[:1].isupper()
                and not isinstance(parents.get(node), ast.Attribute | ast.Call)
            ):
                problems.append(
                    f"{filename}:{node.lineno}: {owner.id}.{node.attr} is an unscoped enum; name its "
                    f"enum class ({owner.id}.<Enum>.{node.attr})"
                )
        elif isinstance(node, ast.Name) and node.id in REMOVED:
            problems.append(f"{filename}:{node.lineno}: {node.id} is gone in Qt 6")
    return problems


def test_the_checker_finds_what_qt6_breaks():
    bad = (
        "from PyQt5.QtCore import Qt\nfrom qgis.PyQt.QtCore import Qt\nfrom qgis.PyQt.QtWidgets import QMessageBox\n"
        "a = Qt.AlignLeft\nb = QMessageBox.Yes\nc = dialog.exec_()\nd = QRegExp('x')\n"
    )
    found = qt_violations(bad)
    assert len(found) == 5, found
    good = (
        "from qgis.PyQt.QtCore import Qt\nfrom qgis.PyQt.QtWidgets import QMessageBox\n"
        "a = Qt.AlignmentFlag.AlignLeft\nb = QMessageBox.StandardButton.Yes\n"
        "c = QMessageBox.question(None, 'a', 'b')\nd = dialog.exec()\n"
    )
    assert qt_violations(good) == []


def test_plugin_is_qt6_ready_and_says_so():
    found = [
        p
        for path in sorted(PLUGIN.rglob("*.py"))
        for p in qt_violations(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    ]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(PLUGIN / "metadata.txt", encoding="utf-8")
    declared = parser["general"].get("supportsQt6", "False").strip().lower() == "true"
    assert found == [], "\n".join(found)
    assert declared, "the source passes the Qt 6 check: declare supportsQt6=True in metadata.txt"
