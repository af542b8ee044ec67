"""The top-level ``resources/`` and ``metadata.txt`` (issue 26 item 8) hold the one copy of the shared non-code assets
(QML styles, icon, the plugin's metadata.txt); the plugin package links to them, so QGIS reads them from the source
folder at dev time and the build (wheel, sdist, plugin zip) carries their contents. No second copy can drift."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "qgis_plugin" / "ccexpert_changes"
PACKAGE_DIRS = {"ccexpert": REPO / "backend" / "ccexpert", "ccexpert_changes": PLUGIN}
# the package's name for each asset -> the one file (assets in resources/, the zip's metadata.txt at the top level)
ASSETS = {
    PLUGIN / "metadata.txt": REPO / "metadata.txt",
    PLUGIN / "icon.svg": REPO / "resources" / "icons" / "icon.svg",
    PLUGIN / "styles" / "change_captions.qml": REPO / "resources" / "styles" / "change_captions.qml",
    PLUGIN / "styles" / "change_areas.qml": REPO / "resources" / "styles" / "change_areas.qml",
}


def shipped(path: Path) -> bool:
    """Whether ``path`` (a package's name for a file, not resolved) is package data by pyproject.toml's globs."""
    globs = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    for package, folder in PACKAGE_DIRS.items():
        if folder in path.parents:
            rel = path.relative_to(folder).as_posix()
            return any(fnmatch.fnmatch(rel, pattern) for pattern in globs.get(package, []))
    return False


def test_each_asset_is_one_real_file_that_the_package_links_to():
    for link, asset in ASSETS.items():
        name = link.relative_to(REPO)
        assert asset.is_file() and not asset.is_symlink(), f"{asset.relative_to(REPO)} must be the real file"
        assert link.is_symlink(), f"{name} must be a link to {asset.relative_to(REPO)}, not a copy"
        target = os.readlink(link)
        assert not os.path.isabs(target), f"{name} -> {target}: a relative link, so any clone resolves it"
        assert link.resolve() == asset, f"{name} points to {link.resolve()}, not {asset.relative_to(REPO)}"
        assert shipped(link), f"{name} is not package data: the build would not carry {asset.relative_to(REPO)}"


def test_every_file_in_resources_is_shipped_through_a_package_link():
    """An asset added to resources/ without a link in the package would never reach the wheel or the zip."""
    linked = set(ASSETS.values())
    for path in sorted((REPO / "resources").rglob("*")):
        rel = path.relative_to(REPO).as_posix()
        if path.is_symlink():  # the demo model (large, binary) stays in its package: resources/ names it
            target = path.resolve()
            assert target.is_dir() and PACKAGE_DIRS["ccexpert"] in target.parents, f"{rel} -> {target}"
            assert all(shipped(f) for f in target.rglob("*") if f.is_file()), f"{rel}: not all package data"
            continue
        if path.is_file() and path.name != "README.md":
            assert path in linked, f"{rel} is not linked from a package: add the link and it to ASSETS"
    for link in PLUGIN.rglob("*"):
        if link.is_symlink():
            assert link in ASSETS, f"{link.relative_to(REPO)} is a link this test does not know"


def test_the_checker_tells_shipped_files_from_others():
    assert shipped(PLUGIN / "metadata.txt") and shipped(PLUGIN / "styles" / "change_areas.qml")
    assert not shipped(PLUGIN / "README.md")
    assert not shipped(REPO / "metadata.txt") and not shipped(REPO / "README.md")
