"""HTTP client for the CCExpert backend (``GET /v1/info``, ``POST /v1/captions``) on QGIS networking.

``QgsBlockingNetworkRequest`` is safe in a worker thread, honours the QGIS proxy settings and auth configs
and is cancelled through the ``QgsFeedback`` of the running task. 429 and 5xx answers, timeouts and dropped
connections are retried for at most ``retry_budget_s`` seconds (5 minutes; 10 s for ``/v1/info`` and
``/v1/auth/check``, so a wrong URL is reported quickly), waiting a capped exponential backoff with jitter
(``backoff_s`` * 2^n, at most ``max_backoff_s``, times 0.5-1) that is never shorter than the server's
``Retry-After``; ``retries`` optionally caps the count too. A failing model (500, ``engine_error``) is not load:
it is retried ``SERVER_ERROR_RETRIES`` times only. A refused connection or a host name that does not resolve is
not retried at all: the user reads at once that nothing listens there and what to do. (The policy is
``core.retry``, shared with ``ccexpert.client``.) Everything else becomes a :class:`BackendError` whose
message tells the user what to do. :meth:`BackendClient.check_key` asks the backend whether it accepts the key
before a run writes anything.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from qgis.core import QgsBlockingNetworkRequest, QgsFeedback, QgsNetworkAccessManager
from qgis.PyQt.QtCore import QUrl
from qgis.PyQt.QtNetwork import QNetworkReply, QNetworkRequest

from .about import tr, user_agent
from .core import retry as policy
from .settings import request_headers

API_VERSION = "1"
RETRY_STATUSES = policy.RETRY_STATUSES
RETRY_BUDGET_S = policy.RETRY_BUDGET_S
PROBE_BUDGET_S = policy.PROBE_BUDGET_S
SERVER_ERROR_RETRIES = policy.SERVER_ERROR_RETRIES
SERVER_ERROR_CODES = policy.SERVER_ERROR_CODES
# nothing listens there, or the name is wrong: not retried (waiting does not start a backend)
_NOT_LISTENING = {
    QNetworkReply.NetworkError.ConnectionRefusedError: policy.REFUSED,
    QNetworkReply.NetworkError.HostNotFoundError: policy.HOST_NOT_FOUND,
}
_TRANSIENT_ERRORS = {
    QNetworkReply.NetworkError.RemoteHostClosedError,
    QNetworkReply.NetworkError.TemporaryNetworkFailureError,
    QNetworkReply.NetworkError.NetworkSessionFailedError,
    QNetworkReply.NetworkError.UnknownNetworkError,
    QNetworkReply.NetworkError.ProxyConnectionRefusedError,
}


CLIENT_HEADER = b"X-CCExpert-Client"
_preprocessor_id: str | None = None


def _tag_user_agent(request: QNetworkRequest) -> None:
    """QgsNetworkAccessManager overwrites User-Agent with its own; append the plugin's to our requests only."""
    client = bytes(request.rawHeader(CLIENT_HEADER)).decode("latin-1")
    if client:
        agent = bytes(request.rawHeader(b"User-Agent")).decode("latin-1")
        if client not in agent:
            request.setRawHeader(b"User-Agent", f"{agent} {client}".strip().encode("latin-1"))


def install_user_agent_hook() -> None:
    global _preprocessor_id
    if _preprocessor_id is None:
        _preprocessor_id = QgsNetworkAccessManager.setRequestPreprocessor(_tag_user_agent)


def remove_user_agent_hook() -> None:
    global _preprocessor_id
    if _preprocessor_id is not None:
        QgsNetworkAccessManager.removeRequestPreprocessor(_preprocessor_id)
        _preprocessor_id = None


class BackendError(Exception):
    """A failure talking to the backend. ``kind``: unreachable, incompatible, auth, rejected, server, timeout,
    canceled, model_failed (the backend's model cannot caption).
    ``chip_id`` names the pair the backend refused, when it said which."""

    def __init__(self, kind: str, message: str, status: int | None = None, chip_id: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.chip_id = chip_id

    @property
    def fatal(self) -> bool:
        """Errors that will repeat for every following request, so a run must stop."""
        return self.kind in ("unreachable", "incompatible", "auth", "canceled", "model_failed")


class BackendClient:
    """One backend at ``base_url``; ``authcfg`` is a QGIS auth config id (APIHeader or the Basic fallback)."""

    def __init__(
        self,
        base_url: str,
        authcfg: str = "",
        feedback: QgsFeedback | None = None,
        timeout_s: float = 60.0,
        per_pair_timeout_s: float = 30.0,
        retries: int | None = None,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        retry_budget_s: float = RETRY_BUDGET_S,
        probe_budget_s: float = PROBE_BUDGET_S,
    ):
        url = (base_url or "").strip().rstrip("/")
        if not url.lower().startswith(("http://", "https://")):
            raise BackendError(
                "unreachable", tr("Backend URL must start with http:// or https://, got {0!r}").format(url)
            )
        self.base_url = url
        self.answered = False  # this backend answered once: a refused connection later is a restart, retried
        self.feedback = feedback
        # told before each wait for a retry (the run loop's ``waiting``): the progress line shows the outage
        self.on_retry: Callable[[policy.Waiting], None] | None = None
        self._home_thread = threading.get_ident()  # where the run's feedback may abort a request (see _abortable)
        self.timeout_s = timeout_s
        self.per_pair_timeout_s = per_pair_timeout_s
        self.retries = retries  # None: only the budget bounds the retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.retry_budget_s = retry_budget_s
        self.probe_budget_s = probe_budget_s
        try:
            self._headers, self._authcfg = request_headers(authcfg)
        except RuntimeError as exc:
            raise BackendError("auth", str(exc)) from exc

    # -- public API ---------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """``/v1/info``, checked for the fields and API version this plugin speaks."""
        status, body = self._request(
            "GET",
            "/v1/info",
            None,
            timeout_s=min(self.timeout_s, 30.0),
            budget_s=min(self.retry_budget_s, self.probe_budget_s),
        )
        try:
            info = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            info = None
        if not isinstance(info, dict) or "chip_size" not in info:
            raise BackendError(
                "incompatible",
                tr("{0} answered /v1/info without CCExpert service information: is this a CCExpert backend?").format(
                    self.base_url
                ),
                status,
            )
        if str(info.get("api_version")) != API_VERSION:
            raise BackendError(
                "incompatible",
                tr(
                    "The backend at {0} speaks API version {1}; this plugin needs version {2}. "
                    "Update the plugin or the backend."
                ).format(self.base_url, info.get("api_version"), API_VERSION),
                status,
            )
        return info

    def check_key(self) -> dict[str, Any] | None:
        """``GET /v1/auth/check`` before a run: ``{"status": "ok", "label": ...}`` when the backend accepts the key,
        None when it predates the endpoint (404/405: the first batch checks the key). A refused key raises
        BackendError kind ``auth``."""
        try:
            status, body = self._request(
                "GET",
                "/v1/auth/check",
                None,
                timeout_s=min(self.timeout_s, 30.0),
                budget_s=min(self.retry_budget_s, self.probe_budget_s),
            )
        except BackendError as exc:
            if exc.kind == "incompatible" and exc.status in (404, 405):
                return None
            raise
        try:
            answer = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            answer = None
        return answer if isinstance(answer, dict) else {"status": "ok", "label": None}

    def captions(
        self, pairs: list[dict[str, str]], max_new_tokens: int = 64, context: str | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        """Caption ``pairs`` (``{"id", "before", "after"}`` with base64 PNGs) -> (model, results in request
        order). ``context``, the run's note, is sent only when given (servers before notes refuse the field)."""
        request: dict[str, Any] = {"pairs": pairs, "max_new_tokens": int(max_new_tokens)}
        if context is not None:
            request["context"] = context
        payload = json.dumps(request).encode("utf-8")
        status, body = self._request(
            "POST", "/v1/captions", payload, timeout_s=self.timeout_s + self.per_pair_timeout_s * len(pairs)
        )
        try:
            answer = json.loads(body.decode("utf-8"))
            results, model = answer["results"], str(answer.get("model") or "")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            raise BackendError(
                "incompatible", tr("The backend answered /v1/captions with an unexpected body."), status
            ) from None
        by_id = {r.get("id"): r for r in results if isinstance(r, dict)}
        missing = [p["id"] for p in pairs if p["id"] not in by_id]
        if missing:
            raise BackendError(
                "incompatible", tr("The backend answered without results for {0} chip(s).").format(len(missing)), status
            )
        return model, [by_id[p["id"]] for p in pairs]

    def effective_timeout_s(self, timeout_s: float | None = None) -> float:
        """The request timeout in force: ours, capped by QGIS' own network timeout (Options > Network)."""
        qgis_s = QgsNetworkAccessManager.timeout() / 1000.0
        wanted = self.timeout_s if timeout_s is None else timeout_s
        return min(wanted, qgis_s) if qgis_s > 0 else wanted

    # -- plumbing -----------------------------------------------------------------------------------------
    def _abortable(self) -> QgsFeedback | None:
        """The feedback whose cancel aborts a request in flight: only in the thread that made this client. A request
        sent from one of the run loop's request threads is not tied to it: QGIS 3.22 can leave such a request
        waiting forever when a feedback of another thread cancels it (its abort drops the reply without ending the
        wait). That request ends by itself (answer or timeout) and the canceled run drops its answer."""
        return self.feedback if threading.get_ident() == self._home_thread else None

    def _canceled(self) -> bool:
        return self.feedback is not None and self.feedback.isCanceled()

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self._canceled():
                raise BackendError("canceled", tr("Canceled."))
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): capped exponential backoff with jitter,
        never less than the server's ``Retry-After``."""
        return policy.backoff_delay(attempt, self.backoff_s, self.max_backoff_s, retry_after)

    def _request(
        self, method: str, path: str, data: bytes | None, timeout_s: float | None = None, budget_s: float | None = None
    ) -> tuple[int, bytes]:
        budget_s = self.retry_budget_s if budget_s is None else budget_s
        deadline = time.monotonic() + budget_s
        attempt = 0
        while True:
            attempt += 1
            if self._canceled():
                raise BackendError("canceled", tr("Canceled."))
            try:
                return self._once(method, path, data, timeout_s or self.timeout_s)
            except _Retry as retry:
                last = retry.error
                delay = self.backoff_delay(attempt, retry.retry_after)
                stop = policy.give_up(
                    attempt,
                    retries=self.retries,
                    server_error=retry.server_error,
                    now=time.monotonic(),
                    delay=delay,
                    deadline=deadline,
                )
                if stop in ("retries", "server_error"):
                    raise last from None
                if stop == "budget":
                    last.args = (
                        tr("{0} (gave up after {1} attempts: retry budget of {2:g} s spent)").format(
                            last, attempt, budget_s
                        ),
                    )
                    raise last from None
                if self.on_retry is not None:  # the progress line says it (issue 25), the log only once
                    self.on_retry(policy.Waiting(attempt + 1, delay, deadline - time.monotonic()))
                if self.feedback is not None and (self.on_retry is None or attempt == 1):
                    self.feedback.pushInfo(
                        tr("{0}; retrying in {1:.1f} s (attempt {2}, {3:.0f} s of the retry budget left)").format(
                            last, delay, attempt + 1, deadline - time.monotonic()
                        )
                    )
                self._sleep(delay)

    def _once(self, method: str, path: str, data: bytes | None, timeout_s: float) -> tuple[int, bytes]:
        url = self.base_url + path
        request = QNetworkRequest(QUrl(url))
        install_user_agent_hook()
        request.setRawHeader(CLIENT_HEADER, user_agent().encode("utf-8"))
        request.setRawHeader(b"Accept", b"application/json")
        for name, value in self._headers.items():
            request.setRawHeader(name.encode("utf-8"), value.encode("utf-8"))
        if hasattr(request, "setTransferTimeout"):
            request.setTransferTimeout(int(timeout_s * 1000))
        blocking = QgsBlockingNetworkRequest()
        if self._authcfg:
            blocking.setAuthCfg(self._authcfg)
        if method == "GET":
            code = blocking.get(request, True, self._abortable())
        else:
            request.setHeader(QNetworkRequest.KnownHeaders.ContentTypeHeader, "application/json")
            code = blocking.post(request, data or b"", True, self._abortable())
        if self._canceled():
            raise BackendError("canceled", tr("Canceled."))
        reply = blocking.reply()
        status_attr = reply.attribute(QNetworkRequest.Attribute.HttpStatusCodeAttribute)
        status = int(status_attr) if status_attr not in (None, "") else 0
        body = bytes(reply.content())
        self.answered = self.answered or status > 0
        if code == QgsBlockingNetworkRequest.ErrorCode.NoError and 200 <= status < 300:
            return status, body
        timed_out = code == QgsBlockingNetworkRequest.ErrorCode.TimeoutError or reply.error() in (
            QNetworkReply.NetworkError.TimeoutError,
            QNetworkReply.NetworkError.OperationCanceledError,
        )
        if status == 0 and timed_out:
            raise _Retry(
                BackendError(
                    "timeout",
                    tr(
                        "The backend at {0} did not answer {1} within {2:.0f} s; it may be overloaded or the batch too "
                        "large for its device."
                    ).format(self.base_url, path, self.effective_timeout_s(timeout_s)),
                ),
                None,
            )
        if status == 0:
            reason = _NOT_LISTENING.get(reply.error())
            if reason is not None and policy.refusal_is_final(reason, self.answered):
                # nothing listens there: say what to do, at once (a backend that answered before is restarting)
                raise BackendError("unreachable", policy.unreachable_message(self.base_url, reason))
            error = BackendError(
                "unreachable",
                policy.unreachable_message(self.base_url, blocking.errorMessage() or reply.errorString()),
            )
            if reply.error() in _TRANSIENT_ERRORS or reason is not None:
                raise _Retry(error, None)
            raise error
        message, chip_id = _error_message(body)
        if status == 503 and _error_code(body) == "model_failed":  # retrying cannot help
            raise BackendError(
                "model_failed",
                tr(
                    "The backend at {0} is up but its model cannot caption: {1}. Check the backend's log and restart "
                    "it with a working model."
                ).format(self.base_url, message),
                status,
            )
        if status in RETRY_STATUSES:
            raise _Retry(
                BackendError(
                    "server", tr("The backend answered HTTP {0}: {1}").format(status, message), status, chip_id
                ),
                _retry_after(reply),
                server_error=status == 500 or _error_code(body) in SERVER_ERROR_CODES,
            )
        if status in (401, 403):
            raise BackendError(
                "auth",
                tr(
                    "The backend refused the API key (HTTP {0}: {1}). Set the key in the CCExpert settings or "
                    "pick the right AUTHCFG."
                ).format(status, message),
                status,
            )
        if status in (404, 405):
            raise BackendError(
                "incompatible",
                tr("{0} has no CCExpert API at {1} (HTTP {2}); check the backend URL and versions.").format(
                    self.base_url, path, status
                ),
                status,
            )
        raise BackendError(
            "rejected", tr("The backend rejected the request (HTTP {0}): {1}").format(status, message), status, chip_id
        )


class _Retry(Exception):
    def __init__(self, error: BackendError, retry_after: float | None, server_error: bool = False):
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.server_error = server_error  # the model failed (500, engine_error): retried a few times only


def _error_code(body: bytes) -> str | None:
    """``error.code`` of an error body, if it has one."""
    try:
        error = json.loads(body.decode("utf-8")).get("error")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None
    return str(error.get("code")) if isinstance(error, dict) and error.get("code") else None


def _error_message(body: bytes) -> tuple[str, str | None]:
    """``{"error": {"code", "message", "id"}}`` -> (message, id); falls back to the raw body start."""
    try:
        error = json.loads(body.decode("utf-8")).get("error")
        if isinstance(error, dict):
            text = str(error.get("message") or error.get("code") or "")
            return text, (str(error["id"]) if error.get("id") else None)
        detail = json.loads(body.decode("utf-8")).get("detail")
        if detail:
            return str(detail)[:300], None
    except (UnicodeDecodeError, ValueError, AttributeError):
        pass
    return body[:300].decode("utf-8", "replace"), None


def _retry_after(reply) -> float | None:
    raw = bytes(reply.rawHeader(b"Retry-After")).decode("ascii", "ignore").strip()
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None
