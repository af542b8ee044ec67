"""Python client of the captioning service (requests): timeouts, retries with backoff, idempotent ids.

Retries cover what a resend can fix: dropped connections, timeouts, 429 and 5xx; a refused connection or a host
name that does not resolve is reported at once (nothing listens there: waiting does not start a backend). They are
bounded by a budget in seconds (``retry_budget``, 5 minutes by default), not by a count: a backend that sheds
load for a minute is outlasted, one that is down for good is given up on in a known time. The wait before each
retry is a capped exponential backoff (``backoff`` * 2^n, at most ``max_backoff``) with jitter (x 0.5 to 1, so
clients that were refused together do not come back together), and never shorter than the server's
``Retry-After`` (a floor); a wait that would end past the budget is not started. ``retries`` optionally caps the
count as well. A model that fails (500, ``engine_error``/``internal_error``) is not load: it is retried
``SERVER_ERROR_RETRIES`` times only.

A resend is safe because pair ids are idempotency keys: the server answers a known id from its cache
instead of computing it twice. Other 4xx are the caller's mistake and raise :class:`ServiceError` at once.
The policy (what is retried, the backoff, the budget) is ``ccexpert_changes.core.retry``, shared with the plugin.
"""

from __future__ import annotations

import base64
import errno
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests
from ccexpert_changes.core import retry as policy
from ccexpert_changes.core.png import encode_rgb

from . import __version__

log = logging.getLogger(__name__)

RETRY_STATUSES = policy.RETRY_STATUSES
DEFAULT_RETRY_BUDGET = policy.RETRY_BUDGET_S  # seconds of retrying a request before giving up
DEFAULT_PROBE_BUDGET = policy.PROBE_BUDGET_S  # the same for /v1/info and /v1/auth/check
SERVER_ERROR_RETRIES = policy.SERVER_ERROR_RETRIES
SERVER_ERROR_CODES = policy.SERVER_ERROR_CODES


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
    """Lossless PNG of an HxWx3 uint8 array (bytes pass through), written by the clients' one encoder
    (``core.png.encode_rgb``: rows the server decodes fastest)."""
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    return encode_rgb(image)  # ValueError naming what is not an HxWx3 uint8 array


class CCExpertClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 300.0,
        retries: int | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        retry_budget: float = DEFAULT_RETRY_BUDGET,
        probe_budget: float = DEFAULT_PROBE_BUDGET,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.answered = False  # this backend answered once: a refused connection later is a restart, retried
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries  # None: only the budget bounds the retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.retry_budget = float(retry_budget)
        self.probe_budget = float(probe_budget)
        self.session = session or requests.Session()
        # told before each wait for a retry (describe's run loop: the progress line shows the outage)
        self.on_retry: Callable[[policy.Waiting], None] | None = None
        self.session.headers["User-Agent"] = f"ccexpert-client/{__version__}"
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    # -- endpoints --------------------------------------------------------------------------------------
    def info(self) -> dict:
        return self._request("GET", "/v1/info", budget=min(self.retry_budget, self.probe_budget)).json()

    def check_key(self) -> dict | None:
        """``GET /v1/auth/check``: ``{"status": "ok", "label": ...}`` when the backend accepts this client's key
        (label None when it has no keys); None when the backend predates the endpoint (404/405), so the key is
        only checked by the first real request. A missing or wrong key raises :class:`ServiceError` (401/403)."""
        try:
            return self._request("GET", "/v1/auth/check", budget=min(self.retry_budget, self.probe_budget)).json()
        except ServiceError as exc:
            if exc.status in (404, 405):
                return None
            raise

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

    def caption(
        self, pairs: Sequence[ChipPair], max_new_tokens: int | None = None, context: str | None = None
    ) -> list[dict]:
        """One result dict per pair, in order (checked by id). PNGs are encoded once and the same body is
        resent on retry. ``context`` (the run's note) is sent only when given: servers before notes refuse it."""
        if not pairs:
            return []
        body: dict[str, Any] = {
            "pairs": [
                {"id": p.id, "before": _b64(encode_png(p.before)), "after": _b64(encode_png(p.after))} for p in pairs
            ]
        }
        if max_new_tokens is not None:
            body["max_new_tokens"] = max_new_tokens
        if context is not None:
            body["context"] = context
        data = self._request("POST", "/v1/captions", json=body).json()
        results = data.get("results", [])
        got = [r.get("id") for r in results]
        if got != [p.id for p in pairs]:
            raise ServiceError(f"service answered ids {got[:5]}... for {[p.id for p in pairs][:5]}...")
        for r in results:
            r.setdefault("model", data.get("model"))
        return results

    # -- transport --------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, budget: float | None = None, **kwargs) -> requests.Response:
        url = self.base_url + path
        budget = self.retry_budget if budget is None else budget
        deadline = time.monotonic() + budget
        last, status, code = "", None, None
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.ConnectionError as exc:
                why_not = _unreachable_reason(exc)
                if why_not is not None and policy.refusal_is_final(why_not, self.answered):
                    # nothing listens there or the name is wrong: retrying cannot help
                    raise ServiceError(policy.unreachable_message(self.base_url, why_not), None, "unreachable") from exc
                last, status, code = f"{type(exc).__name__}: {exc}", None, None
            except requests.Timeout as exc:
                last, status, code = f"{type(exc).__name__}: {exc}", None, None
            else:
                self.answered = True
                if response.status_code < 400:
                    return response
                code, message, pair_id = _error_of(response)
                status = response.status_code
                last = f"HTTP {status} {code}: {message}"
                if not policy.retryable_status(status, code):  # it will not recover
                    raise ServiceError(f"{method} {path}: {last}", status, code, pair_id)
                retry_after = _seconds(response.headers.get("Retry-After"))
            delay = self.backoff_delay(attempt, retry_after)
            stop = policy.give_up(
                attempt,
                retries=self.retries,
                server_error=policy.is_server_error(status, code),
                now=time.monotonic(),
                delay=delay,
                deadline=deadline,
            )
            if stop is not None:
                why = {
                    "retries": f"no retries left of {self.retries}",
                    "server_error": f"the server kept failing, {SERVER_ERROR_RETRIES} retries",
                    "budget": f"retry budget of {budget:g} s spent",
                }[stop]
                break
            if self.on_retry is not None:  # describe's progress line shows the outage (issue 25)
                self.on_retry(policy.Waiting(attempt + 1, delay, deadline - time.monotonic()))
            log.info(
                "%s %s failed (%s); retry %d in %.2f s (%.0f s of the retry budget left)",
                method,
                path,
                last,
                attempt,
                delay,
                deadline - time.monotonic(),
            )
            time.sleep(delay)
        raise ServiceError(f"{method} {path} failed after {attempt} attempts: {last} ({why})", status, code)

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): ``backoff * 2^(attempt-1)`` capped at
        ``max_backoff``, times a random 0.5-1 (jitter), never less than the server's ``Retry-After``."""
        return policy.backoff_delay(attempt, self.backoff, self.max_backoff, retry_after)


def _unreachable_reason(exc: BaseException) -> str | None:
    """``policy.REFUSED`` or ``policy.HOST_NOT_FOUND`` when a requests ConnectionError is a refused connection or
    a name that does not resolve (found anywhere in its chain of causes and urllib3 reasons), else None (a dropped
    or reset connection, which a resend can fix)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ConnectionRefusedError) or getattr(item, "errno", None) == errno.ECONNREFUSED:
            return policy.REFUSED
        if isinstance(item, socket.gaierror) or type(item).__name__ == "NameResolutionError":
            return policy.HOST_NOT_FOUND
        if isinstance(item, BaseException):
            todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
            todo.extend(a for a in item.args if isinstance(a, BaseException))
    return None


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
