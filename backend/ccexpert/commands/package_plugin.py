"""``ccexpert package-plugin -o dist/``: build the installable QGIS plugin zip and check it the way the
plugins.qgis.org validator does (one lowercase top-level folder with ``__init__.py``, ``metadata.txt`` with
the required keys, ``LICENSE``, the icon; no compiled files, hidden entries or binaries; under 25 MB).

The zip holds the plugin package ``ccexpert_changes`` as Python imports it: ``qgis_plugin/ccexpert_changes`` in a
source checkout, ``site-packages/ccexpert_changes`` once the ``ccexpert`` wheel is installed (its ``metadata.txt``,
``LICENSE``, ``icon.svg`` and ``styles/*.qml`` are package data). In a checkout the plugin's ``metadata.txt``, icon
and styles are links to the top-level ``metadata.txt`` and ``resources/``: the zip carries their contents.
"""

from __future__ import annotations

import argparse
import configparser
import importlib.util
import io
import sys
import zipfile
from pathlib import Path

PLUGIN_NAME = "ccexpert_changes"
MAX_BYTES = 25 * 1024 * 1024
REQUIRED_KEYS = (
    "name",
    "description",
    "version",
    "qgisMinimumVersion",
    "author",
    "email",
    "about",
    "tracker",
    "repository",
)
ALLOWED_SUFFIXES = {".py", ".txt", ".qml", ".svg", ".png", ".ui", ".qm", ".ts", ".md", ".json", ""}
FORBIDDEN_SUFFIXES = {
    ".pyc",
    ".pyo",
    ".so",
    ".dll",
    ".dylib",
    ".exe",
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".onnx",
    ".ckpt",
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "package-plugin",
        help="build the installable QGIS plugin zip",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("dist"), help="folder for the zip (default dist/)")


def plugin_dir() -> Path:
    """The folder of the importable ``ccexpert_changes`` package (found without importing it: it needs QGIS)."""
    spec = importlib.util.find_spec(PLUGIN_NAME)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError(f"the QGIS plugin package {PLUGIN_NAME} is not installed with ccexpert")
    return Path(locations[0])


def _files(folder: Path) -> list[tuple[str, Path]]:
    """(path inside the zip, source file), sorted, without caches or hidden entries."""
    out: list[tuple[str, Path]] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            continue
        if path.suffix in (".pyc", ".pyo"):
            continue
        out.append((f"{PLUGIN_NAME}/{rel.as_posix()}", path))
    return out


class _CaseSensitiveParser(configparser.ConfigParser):
    """Keeps keys as written (qgisMinimumVersion): the documented `optionxform` override, as a method."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def read_metadata_text(text: str) -> dict[str, str]:
    parser = _CaseSensitiveParser(interpolation=None)
    parser.read_string(text)
    if not parser.has_section("general"):
        raise ValueError("metadata.txt has no [general] section")
    return dict(parser["general"])


def validate_zip(data: bytes) -> list[str]:
    """Problems plugins.qgis.org would refuse the zip for (empty list = valid)."""
    problems: list[str] = []
    if len(data) >= MAX_BYTES:
        problems.append(f"zip is {len(data)} bytes, the limit is {MAX_BYTES}")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        tops = {n.split("/")[0] for n in names}
        if len(tops) != 1:
            return problems + [f"zip must hold exactly one top-level folder, found {sorted(tops)}"]
        top = tops.pop()
        if top != top.lower() or not top.isidentifier():
            problems.append(f"top-level folder {top!r} must be a lowercase Python package name")
        for name in names:
            parts = name.rstrip("/").split("/")
            if any(p.startswith(".") or p == "__pycache__" for p in parts):
                problems.append(f"hidden or cache entry {name}")
            suffix = Path(name).suffix.lower()
            if suffix in FORBIDDEN_SUFFIXES or (not name.endswith("/") and suffix not in ALLOWED_SUFFIXES):
                problems.append(f"file type not allowed in a plugin: {name}")
        for needed in ("__init__.py", "metadata.txt", "LICENSE"):
            if f"{top}/{needed}" not in names:
                problems.append(f"{top}/{needed} is missing")
        if f"{top}/metadata.txt" in names:
            try:
                meta = read_metadata_text(zf.read(f"{top}/metadata.txt").decode("utf-8"))
            except (ValueError, configparser.Error, UnicodeDecodeError) as exc:
                return problems + [f"metadata.txt: {exc}"]
            for key in REQUIRED_KEYS:
                if not meta.get(key, "").strip():
                    problems.append(f"metadata.txt lacks the required key {key}")
            for key in ("tracker", "repository"):
                if meta.get(key) and not meta[key].startswith(("http://", "https://")):
                    problems.append(f"metadata.txt {key} must be a URL")
            if meta.get("icon") and f"{top}/{meta['icon']}" not in names:
                problems.append(f"icon {meta['icon']} named in metadata.txt is not in the zip")
            if any("<" in v and ">" in v for v in meta.values()):
                problems.append("metadata.txt must not contain HTML")
    return problems


def build(output_dir: Path) -> Path:
    folder = plugin_dir()
    metadata = folder / "metadata.txt"
    if not metadata.is_file():
        raise FileNotFoundError(f"plugin file {metadata} is missing")
    meta = read_metadata_text(metadata.read_text(encoding="utf-8"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, source in _files(folder):
            info = zipfile.ZipInfo(arcname, date_time=(2024, 1, 1, 0, 0, 0))  # reproducible zip
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, source.read_bytes())
    data = buffer.getvalue()
    problems = validate_zip(data)
    if problems:
        raise ValueError("the plugin zip would be refused:\n  " + "\n  ".join(problems))
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{PLUGIN_NAME}-{meta['version']}.zip"
    target.write_bytes(data)
    return target


def run(args) -> int:
    try:
        target = build(args.output)
    except (ValueError, FileNotFoundError) as exc:
        print(f"package-plugin: {exc}", file=sys.stderr)
        return 1
    print(target)
    return 0
