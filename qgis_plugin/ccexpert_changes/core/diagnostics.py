"""The text behind "Copy diagnostics" (issue 25.14): what an admin asks for first in a bug report (plugin, QGIS,
Python, GDAL and Qt versions, the backend URL and its /v1/info, the last error) and nothing secret: API keys,
bearer tokens and passwords in URLs are masked wherever they appear, and the key itself is never an input here.

Qt-free: the settings dialog gathers the values, this module words and scrubs them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
_BEARER = re.compile(r"(?i)\b(bearer\s+)([^\s\"',;()}]+)")
_NAMED = re.compile(r"(?i)([\"']?\b(?:api[-_]?key|token|password|secret)[\"']?\s*[:=]\s*[\"']?)([^\s\"',;()}&]+)")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s:]+)(?::[^/@\s]*)?@")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:key|api_key|apikey|token|access_token|password)=)[^&\s]+")
SECRET_INFO_KEYS = {"api_key", "api_keys", "key", "keys", "token", "password", "secret"}


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secrets, bearer tokens, ``key=...`` query values and URL passwords masked."""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    out = _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", out)
    out = _NAMED.sub(lambda m: f"{m.group(1)}{MASK}", out)
    out = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", out)
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", out)


def diagnostics_text(
    versions: Mapping[str, str],
    backend_url: str,
    info: Mapping[str, Any] | None,
    info_error: str | None,
    key_stored: bool,
    last_error: str | None,
    secrets: Iterable[str] = (),
) -> str:
    """Plain text for the clipboard. ``secrets`` (e.g. the stored key, when the caller has it decrypted) are masked
    on top of the patterns; ``info`` keys that name secrets are left out."""
    secrets = list(secrets)
    lines = ["CCExpert Change Captions diagnostics"]
    lines += [f"{name}: {value}" for name, value in versions.items()]
    lines.append(f"Backend URL: {backend_url or '(not set)'}")
    lines.append(f"API key: {'stored in the QGIS authentication database' if key_stored else 'none stored'}")
    if info is not None:
        shown = {k: v for k, v in info.items() if str(k).lower() not in SECRET_INFO_KEYS}
        lines.append("Backend /v1/info: " + json.dumps(shown, sort_keys=True, default=str))
    else:
        lines.append(f"Backend /v1/info: not available ({info_error or 'not asked'})")
    lines.append(f"Last error: {last_error or '(none recorded)'}")
    return scrub("\n".join(lines), secrets) + "\n"


__all__ = ["MASK", "diagnostics_text", "scrub"]
