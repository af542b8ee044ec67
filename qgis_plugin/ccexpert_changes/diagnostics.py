"""What "Copy diagnostics" gathers (issue 25.14): versions of the plugin, QGIS, Python, GDAL and Qt, the backend
URL and its /v1/info, whether a key is stored (never the key nor its auth id), and the last error this plugin saw:
a failed run of the dialog, a failed connection test, or a CCExpert warning in the message log. The wording and
the masking of secrets are in ``core.diagnostics``."""

from __future__ import annotations

import contextlib
import platform
import sys
from datetime import datetime, timezone

from qgis.core import Qgis, QgsApplication, QgsSettings
from qgis.PyQt.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

from . import settings
from .about import LOG_TAG, SETTINGS_PREFIX, plugin_version
from .core.diagnostics import diagnostics_text, scrub

KEY_LAST_ERROR = SETTINGS_PREFIX + "last_error"
MAX_ERROR_CHARS = 2000


def versions() -> dict[str, str]:
    from osgeo import gdal

    return {
        "Plugin": plugin_version(),
        "QGIS": f"{Qgis.version()} ({Qgis.versionInt()})",
        "Python": sys.version.split()[0],
        "GDAL": gdal.__version__,
        "Qt": f"{QT_VERSION_STR} (PyQt {PYQT_VERSION_STR})",
        "OS": platform.platform(),
    }


def record_error(text: str) -> None:
    """Keep ``text`` (secrets masked, shortened) with its UTC time as the last error; it survives a restart of
    QGIS, as a bug report is often written later."""
    if not text or not text.strip():
        return
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    QgsSettings().setValue(KEY_LAST_ERROR, f"{when}: {scrub(text.strip())[:MAX_ERROR_CHARS]}")


def last_error() -> str:
    return str(QgsSettings().value(KEY_LAST_ERROR, "") or "")


def collect(backend_url: str, info: dict | None, info_error: str | None) -> str:
    return diagnostics_text(versions(), backend_url, info, info_error, bool(settings.authcfg()), last_error() or None)


def _on_log_message(message: str, tag: str, level) -> None:
    if tag == LOG_TAG and level in (Qgis.MessageLevel.Warning, Qgis.MessageLevel.Critical):
        record_error(message)


def watch_log() -> None:
    """Record CCExpert warnings and errors from the QGIS message log (the plugin connects this in initGui)."""
    QgsApplication.messageLog().messageReceived.connect(_on_log_message)


def unwatch_log() -> None:
    with contextlib.suppress(TypeError):  # not connected
        QgsApplication.messageLog().messageReceived.disconnect(_on_log_message)
