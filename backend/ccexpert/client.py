"""Python client of the captioning service (requests): timeouts, retries with backoff, idempotent ids.

Retries cover what a resend can fix: connection errors, timeouts, 429 (honouring Retry-After) and 5xx.
A resend is safe because pair ids are idempotency keys: the server answers a known id from its cache
instead of computing it twice. Other 4xx are the caller's mistake and raise :class:`ServiceError` at once.
"""

from __future__ import annotations

import base64
import io
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests
from PIL import Image

from . import __version__

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ServiceError(Exception):
    """The service refused a request (4xx) or kept failing after every retry."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None, pair_id: str | None = None):
        super().__init__(message)
        self.status, self.code, self.pair_id = status, code, pair_id


@dataclass(frozen=True)
class ChipPair:
    """One pair to caption: ``before``/``after`` are HxWx3 uint8 arrays or PNG bytes."""

    id: str
    before: np.ndarray | bytes
    after: np.ndarray | bytes


def encode_png(image: np.ndarray | bytes) -> bytes:
    """Lossless PNG of an HxWx3 uint8 array (bytes pass through). Fast zlib level: chips are sent once."""
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 array, got {array.dtype} {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(array, "RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class CCExpertClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 300.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"ccexpert-client/{__version__}"
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    # -- endpoints --------------------------------------------------------------------------------------
    def info(self) -> dict:
        return self._request("GET", "/v1/info").json()

    def healthy(self) -> bool:
        try:
            return self.session.get(self.base_url + "/healthz", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False

    def ready(self) -> bool:
        try:
            return self.session.get(self.base_url + "/readyz", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout: float = 120.0, interval: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise ServiceError(f"{self.base_url} not ready after {timeout:.0f} s")
            time.sleep(interval)

    def caption(self, pairs: Sequence[ChipPair], max_new_tokens: int | None = None) -> list[dict]:
        """One result dict per pair, in order (checked by id). PNGs are encoded once and the same body is
        resent on retry."""
        if not pairs:
            return []
        body: dict[str, Any] = {
            "pairs": [
                {"id": p.id, "before": _b64(encode_png(p.before)), "after": _b64(encode_png(p.after))} for p in pairs
            ]
        }
        if max_new_tokens is not None:
            body["max_new_tokens"] = max_new_tokens
        data = self._request("POST", "/v1/captions", json=body).json()
        results = data.get("results", [])
        got = [r.get("id") for r in results]
        if got != [p.id for p in pairs]:
            raise ServiceError(f"service answered ids {got[:5]}... for {[p.id for p in pairs][:5]}...")
        for r in results:
            r.setdefault("model", data.get("model"))
        return results

    # -- transport --------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = self.base_url + path
        last: str = ""
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response
                code, message, pair_id = _error_of(response)
                last = f"HTTP {response.status_code} {code}: {message}"
                if response.status_code not in RETRY_STATUSES or code == "model_failed":  # it will not recover
                    raise ServiceError(f"{method} {path}: {last}", response.status_code, code, pair_id)
                retry_after = _seconds(response.headers.get("Retry-After"))
            if attempt == self.retries:
                break
            delay = retry_after if retry_after is not None else self.backoff * (2**attempt)
            delay = min(self.max_backoff, delay) * (1.0 + 0.1 * random.random())  # jitter spreads retrying clients
            log.info("%s %s failed (%s); retry %d/%d in %.1f s", method, path, last, attempt + 1, self.retries, delay)
            time.sleep(delay)
        raise ServiceError(f"{method} {path} failed after {self.retries + 1} attempts: {last}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _error_of(response: requests.Response) -> tuple[str | None, str, str | None]:
    try:
        error = response.json()["error"]
        return error.get("code"), error.get("message", ""), error.get("id")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, response.text[:200], None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
