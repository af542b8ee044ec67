"""Settings: URL in QgsSettings under the plugin prefix, API key only in the QGIS auth database."""

from __future__ import annotations

from pathlib import Path

from ccexpert_changes import settings
from qgis.core import QgsApplication, QgsAuthMethodConfig, QgsSettings


def test_backend_url_is_stored_under_the_plugin_prefix(qgis_app):
    settings.set_backend_url(" http://gpu-box:8000 ")
    assert QgsSettings().value("ccexpert_changes/backend_url") == "http://gpu-box:8000"
    assert settings.backend_url() == "http://gpu-box:8000"
    QgsSettings().remove("ccexpert_changes/backend_url")
    assert settings.backend_url() == settings.DEFAULT_BACKEND_URL


def test_api_key_lives_in_the_auth_db_and_only_its_id_in_settings(master_password, qgis_app):
    key = "k-" + "9f3a" * 8
    cfg_id = settings.store_api_key(key)
    settings.set_authcfg(cfg_id)
    assert len(cfg_id) == 7 and settings.authcfg() == cfg_id
    QgsSettings().sync()
    ini = Path(QgsSettings().fileName()).read_text(encoding="utf-8", errors="replace")
    assert cfg_id in ini and key not in ini
    config = QgsAuthMethodConfig()
    assert QgsApplication.authManager().loadAuthenticationConfig(cfg_id, config, True)
    method = "APIHeader" if settings.has_api_header_method() else "Basic"
    assert config.method() == method
    headers, handed_to_qgis = settings.request_headers(cfg_id)
    if method == "Basic":  # QGIS < 3.26: the plugin sends the bearer header itself, never Basic auth
        assert headers == {"Authorization": f"Bearer {key}"} and handed_to_qgis == ""
    else:
        assert headers == {} and handed_to_qgis == cfg_id
    # updating keeps the id
    assert settings.store_api_key("another-key", cfg_id) == cfg_id
    assert settings.request_headers(cfg_id)[0].get("Authorization", "Bearer another-key") == "Bearer another-key"
    QgsSettings().remove("ccexpert_changes/authcfg")


def test_unknown_authcfg_is_a_clear_error(master_password, qgis_app):
    import pytest
    from ccexpert_changes.backend_client import BackendClient, BackendError

    with pytest.raises(BackendError, match="zzzzzzz was not found"):
        BackendClient("http://127.0.0.1:9", "zzzzzzz")
