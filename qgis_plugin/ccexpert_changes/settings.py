"""Plugin settings: the backend URL in QgsSettings under the plugin prefix, the API key in the QGIS
authentication database (only the 7-character authcfg id is kept in QgsSettings).

Admins can pre-seed both keys (``ccexpert_changes/backend_url``, ``ccexpert_changes/authcfg``) in
``qgis_global_settings.ini``.
"""

from __future__ import annotations

import os

from qgis.core import QgsApplication, QgsAuthMethodConfig, QgsProject, QgsSettings
from qgis.PyQt.QtCore import QStandardPaths

from .about import SETTINGS_PREFIX, tr

DEFAULT_BACKEND_URL = "http://127.0.0.1:8000"
KEY_BACKEND_URL = SETTINGS_PREFIX + "backend_url"
KEY_AUTHCFG = SETTINGS_PREFIX + "authcfg"
KEY_MAX_CHIPS = SETTINGS_PREFIX + "max_chips"
KEY_OUTPUT_FOLDER = SETTINGS_PREFIX + "output_folder"
OUTPUT_SUBFOLDER = "CCExpert changes"
DEFAULT_MAX_CHIPS = 5000
# QGIS < 3.26 has no APIHeader auth method: the key then sits in a Basic config's password under this user
# name, and the client sends it as a bearer token itself (never as Basic auth).
FALLBACK_KEY_USER = "ccexpert-api-key"
AUTH_CONFIG_NAME = "CCExpert backend API key"


def backend_url() -> str:
    return str(QgsSettings().value(KEY_BACKEND_URL, DEFAULT_BACKEND_URL) or DEFAULT_BACKEND_URL)


def set_backend_url(url: str) -> None:
    QgsSettings().setValue(KEY_BACKEND_URL, url.strip())


def authcfg() -> str:
    return str(QgsSettings().value(KEY_AUTHCFG, "") or "")


def set_authcfg(cfg_id: str) -> None:
    QgsSettings().setValue(KEY_AUTHCFG, cfg_id or "")


def max_chips() -> int:
    try:
        return int(QgsSettings().value(KEY_MAX_CHIPS, DEFAULT_MAX_CHIPS))
    except (TypeError, ValueError):
        return DEFAULT_MAX_CHIPS


def set_max_chips(value: int) -> None:
    QgsSettings().setValue(KEY_MAX_CHIPS, int(value))


def output_folder(project: QgsProject | None = None) -> str:
    """Where a run's result goes by default, a folder the analyst keeps (never QGIS's temporary folder, which is
    emptied on exit): "CCExpert changes" next to the saved project file, else the folder set under
    ``ccexpert_changes/output_folder``, else "CCExpert changes" in the user's Documents."""
    project = project or QgsProject.instance()
    if project.fileName():
        return os.path.join(project.absolutePath(), OUTPUT_SUBFOLDER)
    chosen = str(QgsSettings().value(KEY_OUTPUT_FOLDER, "") or "")
    if chosen:
        return chosen
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return os.path.join(documents or os.path.expanduser("~"), OUTPUT_SUBFOLDER)


def has_api_header_method() -> bool:
    return "APIHeader" in QgsApplication.authManager().authMethodsKeys()


def needs_master_password() -> bool:
    """True when touching the stored key will make QGIS ask for its master password (not yet entered in this
    session): the settings dialog announces that prompt before it appears."""
    manager = QgsApplication.authManager()
    return not manager.isDisabled() and not manager.masterPasswordIsSet()


def store_api_key(key: str, cfg_id: str = "") -> str:
    """Create (or update ``cfg_id``) an auth config holding ``key`` and return its id.

    Raises RuntimeError when the authentication database is not usable (no master password set)."""
    manager = QgsApplication.authManager()
    if manager.isDisabled():
        raise RuntimeError(tr("The QGIS authentication system is disabled: {0}").format(manager.disabledMessage()))
    if not manager.setMasterPassword(True):
        raise RuntimeError(tr("Set the QGIS master password first (Settings > Options > Authentication)."))
    config = QgsAuthMethodConfig()
    if cfg_id:
        loaded = manager.loadAuthenticationConfig(cfg_id, config, True)
        if isinstance(loaded, tuple):
            config = loaded[1]
    config.setName(AUTH_CONFIG_NAME)
    if has_api_header_method():
        config.setMethod("APIHeader")
        config.setConfigMap({"Authorization": f"Bearer {key}"})
    else:
        config.setMethod("Basic")
        config.setConfigMap({"username": FALLBACK_KEY_USER, "password": key, "realm": ""})
    if cfg_id and config.id():
        ok = manager.updateAuthenticationConfig(config)
    else:
        result = manager.storeAuthenticationConfig(config)
        ok = result[0] if isinstance(result, tuple) else result  # (ok, config) from the SIP_INOUT binding
    if not ok or not config.id():
        raise RuntimeError(tr("Could not store the API key in the QGIS authentication database."))
    return config.id()


def request_headers(cfg_id: str) -> tuple[dict[str, str], str]:
    """(extra headers, authcfg to hand to QGIS) for a request: an APIHeader (or any other method) config is
    applied by QGIS; the Basic fallback written by :func:`store_api_key` becomes a bearer header."""
    if not cfg_id:
        return {}, ""
    manager = QgsApplication.authManager()
    config = QgsAuthMethodConfig()
    loaded = manager.loadAuthenticationConfig(cfg_id, config, True)
    if isinstance(loaded, tuple):  # (ok, config) from the SIP_INOUT binding
        loaded, config = loaded
    if not loaded:
        raise RuntimeError(
            tr("Authentication configuration {0} was not found or could not be decrypted.").format(cfg_id)
        )
    if config.method() == "Basic" and config.config("username") == FALLBACK_KEY_USER:
        return {"Authorization": f"Bearer {config.config('password')}"}, ""
    return {}, cfg_id
