"""Plugin identity (version from metadata.txt), resource lookup and the translation helper."""

from __future__ import annotations

import configparser
import functools
import os

from qgis.PyQt.QtCore import QCoreApplication

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
LOG_TAG = "CCExpert"
SETTINGS_PREFIX = "ccexpert_changes/"


def tr(text: str, context: str = "CCExpert") -> str:
    """Every user-facing string goes through Qt's translation machinery."""
    return QCoreApplication.translate(context, text)


@functools.lru_cache(maxsize=1)
def metadata() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    return dict(parser["general"]) if parser.has_section("general") else {}


def plugin_version() -> str:
    return metadata().get("version", "0.0.0")


def user_agent() -> str:
    from qgis.core import Qgis

    return f"ccexpert-qgis/{plugin_version()} (QGIS {Qgis.versionInt()})"


def resource_path(kind: str, name: str) -> str:
    """Path of a shipped resource (``kind`` = "icons" or "styles"): in the plugin folder (the icon at its top,
    styles in ``styles/``), in a checkout as in the zip and the wheel."""
    return os.path.join(PLUGIN_DIR, name if kind == "icons" else os.path.join(kind, name))


def icon_path() -> str:
    return resource_path("icons", metadata().get("icon", "icon.svg"))


def style_path() -> str:
    return resource_path("styles", "change_captions.qml")


def help_url() -> str:
    """The user guide: the README's "In QGIS" section (Help buttons, the algorithm's helpUrl)."""
    return metadata().get("homepage", "https://github.com/ccexpert-team/ccexpert").rstrip("/") + "#in-qgis"


def chips_text(count: int) -> str:
    """ "1 chip", "9 chips": GUI text never says "1 chips"."""
    return tr("1 chip") if count == 1 else tr("{0} chips").format(count)
