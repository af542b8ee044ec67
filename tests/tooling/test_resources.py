"""The top-level ``resources/`` and ``metadata.txt`` (issue 26 item 8) are links to the one copy the packages ship:
editing either name edits the shipped file, and no second copy can drift."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {
    "ccexpert": REPO / "backend" / "ccexpert",
    "ccexpert_changes": REPO / "qgis_plugin" / "ccexpert_changes",
}


def shipped(path: Path) -> bool:
    """Whether ``path`` (resolved) is package data by pyproject.toml's globs."""
    globs = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    for package, folder in PACKAGE_DIRS.items():
        if folder in path.parents:
            rel = path.relative_to(folder).as_posix()
            return any(fnmatch.fnmatch(rel, pattern) for pattern in globs.get(package, []))
    return False


def links() -> list[Path]:
    found = [REPO / "metadata.txt"]
    for path in sorted((REPO / "resources").rglob("*")):
        if path.is_symlink():
            found.append(path)
            continue
        if path.is_file():
            assert path.name == "README.md", f"{path.relative_to(REPO)} is a copy: make it a link to the shipped file"
    return found


def test_every_resource_is_a_link_to_shipped_package_data():
    found = links()
    assert {p.relative_to(REPO).as_posix() for p in found} >= {
        "metadata.txt",
        "resources/styles/change_captions.qml",
        "resources/icons/icon.svg",
        "resources/demo_model",
    }
    for link in found:
        assert link.is_symlink(), f"{link.relative_to(REPO)} must be a link to the shipped file"
        target = link.resolve()
        assert target.exists(), f"{link.relative_to(REPO)} points nowhere"
        files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
        assert files, f"{link.relative_to(REPO)} is empty"
        for file in files:
            assert shipped(file), f"{file.relative_to(REPO)} (behind {link.relative_to(REPO)}) is not package data"


def test_the_checker_tells_shipped_files_from_others(tmp_path):
    assert shipped(REPO / "qgis_plugin" / "ccexpert_changes" / "metadata.txt")
    assert not shipped(REPO / "qgis_plugin" / "ccexpert_changes" / "README.md")
    assert not shipped(REPO / "README.md")
