"""API keys: stored hashed, constant-time comparison, 401s, and the non-loopback bind rule."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys

import pytest
import requests
from ccexpert.cli import main
from ccexpert.service import Settings, create_app
from ccexpert.service.auth import KeyStore, key_line
from service_helpers import REPO, EchoEngine, b64, png_bytes, solid, thread_server

KEY = "s3cret-key-for-tests"


@pytest.fixture
def keys_file(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text(f"# analysts\n{key_line(KEY, 'alice')}\n\nplain-second-key bob\n", encoding="utf-8")
    return path


def test_keys_file_holds_hashes_and_identifies_callers(keys_file):
    assert KEY not in keys_file.read_text()
    store = KeyStore.from_file(keys_file)
    assert store.enabled
    assert store.identify(KEY) == "alice"
    assert store.identify("plain-second-key") == "bob"
    assert store.identify("wrong") is None and store.identify(KEY + " ") is None
    # nothing in memory is the plaintext key
    assert all(len(digest) == 32 for digest, _ in store.entries)
    assert store.entries[0][0] == hashlib.sha256(KEY.encode()).digest()


def test_comparison_is_constant_time(monkeypatch, keys_file):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    KeyStore.from_file(keys_file).identify(KEY)
    assert len(calls) == 2  # every stored key compared, no early exit on the first match


@pytest.mark.parametrize(
    ("text", "message"),
    [("sha256:abc\n", "64 hex digits"), ("# only a comment\n", "holds no key")],
)
def test_bad_keys_file_is_refused(tmp_path, text, message):
    path = tmp_path / "k.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        KeyStore.from_file(path)
    with pytest.raises(ValueError, match="No such file"):
        KeyStore.from_file(tmp_path / "missing.txt")


def test_server_requires_a_right_key_for_captions_only(keys_file):
    app = create_app(Settings(api_keys_file=keys_file), EchoEngine(chip_size=32))
    good = {"pairs": [{"id": "p", "before": b64(png_bytes(solid(1, 32))), "after": b64(png_bytes(solid(2, 32)))}]}
    with thread_server(app) as url:
        r = requests.post(url + "/v1/captions", json=good)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert "missing API key" in r.json()["error"]["message"] and r.headers["WWW-Authenticate"] == "Bearer"
        r = requests.post(url + "/v1/captions", json=good, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["error"]["message"] == "wrong API key"
        r = requests.post(url + "/v1/captions", json=good, headers={"Authorization": f"Basic {KEY}"})
        assert r.status_code == 401
        r = requests.post(url + "/v1/captions", json=good, headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200 and r.json()["results"][0]["id"] == "p"
        r = requests.post(url + "/v1/captions", json=good, headers={"Authorization": "Bearer plain-second-key"})
        assert r.status_code == 200
        assert requests.get(url + "/v1/info").status_code == 200  # discovery stays open
        assert requests.get(url + "/healthz").status_code == 200


def test_non_loopback_bind_needs_keys_or_insecure(keys_file):
    with pytest.raises(ValueError, match="refusing to serve on 0.0.0.0 without API keys"):
        create_app(Settings(host="0.0.0.0"), EchoEngine())
    create_app(Settings(host="0.0.0.0", insecure=True), EchoEngine())
    create_app(Settings(host="0.0.0.0", api_keys_file=keys_file), EchoEngine())
    create_app(Settings(host="::1"), EchoEngine())


def test_serve_command_refuses_public_bind_without_keys():
    result = subprocess.run(
        [sys.executable, "-m", "ccexpert.cli", "serve", "--host", "0.0.0.0", "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without API keys" in result.stderr


def test_hash_key_command(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(KEY + "\n"))
    assert main(["serve", "--hash-key"]) == 0
    assert capsys.readouterr().out.strip() == key_line(KEY)


# -- issue 16 ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o666, 0o646, 0o664, 0o620])
def test_group_or_world_writable_keys_file_is_refused(keys_file, mode):
    import os

    os.chmod(keys_file, mode)
    with pytest.raises(ValueError, match=r"writable by (group|others).*chmod go-w"):
        KeyStore.from_file(keys_file)
    with pytest.raises(ValueError, match="chmod go-w"):
        create_app(Settings(api_keys_file=keys_file), EchoEngine())
    os.chmod(keys_file, 0o644)  # readable by all is fine: it holds hashes
    assert KeyStore.from_file(keys_file).enabled
    os.chmod(keys_file, 0o600)
    assert KeyStore.from_file(keys_file).enabled


def test_serve_command_refuses_a_writable_keys_file(keys_file):
    import os

    os.chmod(keys_file, 0o666)
    result = subprocess.run(
        [sys.executable, "-m", "ccexpert.cli", "serve", "--port", "0", "--api-keys-file", str(keys_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "writable by group and others" in result.stderr and "chmod go-w" in result.stderr


def test_auth_check_endpoint(keys_file):
    with thread_server(create_app(Settings(api_keys_file=keys_file), EchoEngine(chip_size=32))) as url:
        r = requests.get(url + "/v1/auth/check", headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200 and r.json() == {"status": "ok", "label": "alice"}
        r = requests.get(url + "/v1/auth/check", headers={"Authorization": "Bearer plain-second-key"})
        assert r.json() == {"status": "ok", "label": "bob"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
            r = requests.get(url + "/v1/auth/check", headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
            assert r.headers["WWW-Authenticate"] == "Bearer"
    with thread_server(create_app(Settings(), EchoEngine(chip_size=32))) as url:
        r = requests.get(url + "/v1/auth/check")
        assert r.status_code == 200 and r.json() == {"status": "ok", "label": None}


def test_metrics_can_require_the_key(keys_file):
    good = {"Authorization": f"Bearer {KEY}"}
    with thread_server(
        create_app(Settings(api_keys_file=keys_file, metrics_require_key=True), EchoEngine(chip_size=32))
    ) as url:
        r = requests.get(url + "/metrics")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert requests.get(url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = requests.get(url + "/metrics", headers=good)
        assert r.status_code == 200 and "ccexpert_ready" in r.text
    with thread_server(create_app(Settings(api_keys_file=keys_file), EchoEngine(chip_size=32))) as url:
        assert requests.get(url + "/metrics").status_code == 200  # default on loopback: open
    # default off loopback: behind the key; asking for it without keys is a configuration error
    assert Settings(host="0.0.0.0").metrics_protected(keys_enabled=True)
    assert not Settings().metrics_protected(keys_enabled=True)
    assert not Settings(metrics_require_key=False, host="0.0.0.0").metrics_protected(keys_enabled=True)
    with pytest.raises(ValueError, match="metrics_require_key needs API keys"):
        create_app(Settings(metrics_require_key=True), EchoEngine())


def test_access_log_names_the_key_label(keys_file, caplog):
    import logging

    good = {"pairs": [{"id": "p", "before": b64(png_bytes(solid(1, 32))), "after": b64(png_bytes(solid(2, 32)))}]}
    with (
        thread_server(create_app(Settings(api_keys_file=keys_file), EchoEngine(chip_size=32))) as url,
        caplog.at_level(logging.INFO, logger="ccexpert.service.access"),
    ):
        assert requests.post(url + "/v1/captions", json=good, headers={"Authorization": f"Bearer {KEY}"}).ok
        assert requests.post(url + "/v1/captions", json=good).status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "ccexpert.service.access"]
    assert any("key=alice" in m and "pairs=1" in m and "status=200" in m for m in lines), lines
    assert any("key=-" in m and "status=401" in m and "code=unauthorized" in m for m in lines), lines
