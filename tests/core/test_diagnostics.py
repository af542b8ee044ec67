"""Issue 25.14: the diagnostics text names versions, backend and last error, and never a secret."""

from __future__ import annotations

from ccexpert_changes.core.diagnostics import MASK, diagnostics_text, scrub

KEY = "s3cr3t-Key_4f9a"


def test_bearer_tokens_url_passwords_and_key_queries_are_masked():
    assert scrub(f"401 for Authorization: Bearer {KEY}") == f"401 for Authorization: Bearer {MASK}"
    assert scrub(f"http://admin:{KEY}@gpu:8000/v1/info") == f"http://{MASK}@gpu:8000/v1/info"
    assert scrub(f"https://gpu/v1/info?api_key={KEY}&x=1") == f"https://gpu/v1/info?api_key={MASK}&x=1"
    assert scrub(f'{{"token": "{KEY}"}}') == f'{{"token": "{MASK}"}}'
    assert scrub(f"the key {KEY} was refused", [KEY]) == f"the key {MASK} was refused"
    assert scrub("Cannot reach http://127.0.0.1:8000") == "Cannot reach http://127.0.0.1:8000"


def test_diagnostics_name_versions_backend_info_and_last_error_without_the_key():
    text = diagnostics_text(
        {"Plugin": "0.2.0", "QGIS": "3.22.16", "GDAL": "3.6.2"},
        f"http://u:{KEY}@gpu:8000",
        {"model_name": "ccexpert-7b", "chip_size": 384, "api_key": KEY},
        None,
        True,
        f"Tile r1_c2: 401 Unauthorized (Bearer {KEY})",
        [KEY],
    )
    assert KEY not in text
    assert "Plugin: 0.2.0" in text and "QGIS: 3.22.16" in text and "GDAL: 3.6.2" in text
    assert '"model_name": "ccexpert-7b"' in text and "api_key" not in text
    assert "API key: stored in the QGIS authentication database" in text and "Last error: Tile r1_c2" in text
    down = diagnostics_text({}, "http://127.0.0.1:9", None, "Cannot reach the backend", False, None)
    assert "not available (Cannot reach the backend)" in down and "API key: none stored" in down
    assert "Last error: (none recorded)" in down
