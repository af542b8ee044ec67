"""The two ASGI middlewares of the service (``create_app`` adds both; issue 16 for the limits):

``RequestMetrics`` (outermost): request count by route and status, latency by route, and the access log line of
caption requests (key label, pair count, status, error code, time); it sees the guard's refusals too. A client that
disconnects before its answer is counted as status 499 (nginx's "client closed request"), so 5xx means a server
fault.

``RequestGuard`` (before routing):

- headers: an ``Authorization`` header over 8 KiB, or headers over 64 KiB in all -> 431 ``header_too_large``;
- body size: ``Content-Length`` over ``max_body_bytes`` -> 413 before reading; a chunked body is counted while
  streaming;
- body deadline: the whole body must arrive within ``body_timeout_s`` of the request's headers, however it
  trickles -> 408 ``body_timeout``;
- body memory: bytes of bodies being read or served, all requests together, stay under ``max_concurrency x
  max_body_bytes`` (what the in-flight limit used to bound) -> 429 ``overloaded``.

Refusals sent before the body is fully read close the connection (``Connection: close``). A client that
disconnects mid-body is dropped quietly. The in-flight limit of caption requests (taken once the body is in) is
``limits.InflightLimiter``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError

log = logging.getLogger("ccexpert.service")
access_log = logging.getLogger("ccexpert.service.access")

MAX_AUTHORIZATION_BYTES = 8 * 1024
MAX_HEADER_BYTES = 64 * 1024
LOGGED_PATHS = frozenset({"/v1/captions"})
CLIENT_CLOSED = 499  # nginx's status for a client that closed the connection before the response


class _Refusal(Exception):
    """Raised from the wrapped ``receive``; the guard answers it (the body is not fully read)."""

    def __init__(self, error: ApiError):
        super().__init__(error.message)
        self.error = error


def note(scope: Scope, **values: Any) -> None:
    """Remember facts about a request for the access log (``request.state`` is this dict)."""
    scope.setdefault("state", {}).update(values)


class BodyBudget:
    """Bytes of request bodies held by the app, all requests together."""

    def __init__(self, limit: int):
        self.limit = limit
        self.held = 0
        self.lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self.lock:
            if self.held + size > self.limit:
                return False
            self.held += size
            return True

    def give_back(self, size: int) -> None:
        with self.lock:
            self.held -= size


class RequestGuard:
    def __init__(self, app: ASGIApp, state: Any):
        self.app, self.state = app, state
        settings = state.settings
        self.limit = settings.max_body_bytes
        self.timeout = settings.body_timeout_s
        self.budget = BodyBudget(settings.body_budget)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._check_headers(scope.get("headers") or [])
        if problem is not None:
            await self._refuse(scope, send, problem)
            return
        deadline = time.monotonic() + self.timeout
        held = 0
        started = False
        body_done = False

        async def guarded_receive() -> Message:
            nonlocal held, body_done
            if body_done:  # waiting for a disconnect after the body: no deadline
                return await receive()
            remaining = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except asyncio.TimeoutError:
                raise _Refusal(
                    ApiError(408, "body_timeout", f"the request body did not arrive within {self.timeout:g} s")
                ) from None
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                if held + size > self.limit:
                    raise _Refusal(_too_large(held + size, self.limit))
                if size and not self.budget.take(size):
                    raise _Refusal(
                        ApiError(
                            429,
                            "overloaded",
                            f"the server is receiving too many bytes of request bodies (limit "
                            f"{self.budget.limit}); retry later",
                            headers={"Retry-After": "1"},
                        )
                    )
                held += size
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except _Refusal as refusal:
            if not started:
                await self._refuse(scope, send, refusal.error)
        except ClientDisconnect:
            log.debug("client %s went away before sending the whole body", scope.get("client"))
        finally:
            self.budget.give_back(held)

    def _check_headers(self, headers: list[tuple[bytes, bytes]]) -> ApiError | None:
        total = 0
        for name, value in headers:
            total += len(name) + len(value) + 4
            if name == b"authorization" and len(value) > MAX_AUTHORIZATION_BYTES:
                return ApiError(
                    431,
                    "header_too_large",
                    f"Authorization header of {len(value)} bytes is over {MAX_AUTHORIZATION_BYTES}",
                )
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                return _too_large(int(value), self.limit)
        if total > MAX_HEADER_BYTES:
            return ApiError(431, "header_too_large", f"headers of {total} bytes are over {MAX_HEADER_BYTES}")
        return None

    async def _refuse(self, scope: Scope, send: Send, error: ApiError) -> None:
        self.state.metrics.errors.labels(error.code).inc()
        note(scope, error_code=error.code)
        headers = {**error.headers, "Connection": "close"}  # the body was not read: do not reuse the connection
        response = JSONResponse(error.body(), status_code=error.status, headers=headers)
        await response({"type": "http"}, _no_receive, send)


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"request body of {size}+ bytes is over the limit of {limit}")


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class RequestMetrics:
    """ASGI middleware (outermost): request count by route and status, latency by route, and the access log line
    of caption requests (key label, pair count, status, error code, time)."""

    def __init__(self, app: ASGIApp, state: Any):
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        responded = disconnected = False

        async def watch_receive() -> Message:
            nonlocal disconnected
            message = await receive()
            disconnected = disconnected or message["type"] == "http.disconnect"
            return message

        async def record_status(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
            await send(message)

        try:
            await self.app(scope, watch_receive, record_status)
        finally:
            if not responded and disconnected:  # the client left first: not a server fault (5xx alerts)
                status = CLIENT_CLOSED
            elapsed = time.perf_counter() - t0
            path = getattr(scope.get("route"), "path", "other")
            self.state.metrics.requests.labels(path, str(status)).inc()
            self.state.metrics.latency.labels(path).observe(elapsed)
            if scope.get("path") in LOGGED_PATHS:
                facts = scope.get("state") or {}
                client = scope.get("client")
                access_log.info(
                    "%s %s key=%s pairs=%d status=%d code=%s ms=%.1f peer=%s",
                    scope.get("method"),
                    scope["path"],
                    facts.get("key_label") or "-",
                    facts.get("pairs", 0),
                    status,
                    facts.get("error_code") or "-",
                    elapsed * 1000.0,
                    f"{client[0]}:{client[1]}" if client else "-",
                )


__all__ = ["CLIENT_CLOSED", "RequestGuard", "RequestMetrics", "note"]
