"""``create_app(settings, engine)``: the FastAPI application (routers, auth, limits, batching, metrics).

With ``engine=None`` the model is loaded in a background thread at startup, so ``/healthz`` answers at
once. ``/readyz`` turns 200 only once the model is loaded and has captioned a built-in sample pair
(``ccexpert.samples``) through the engine: a model that loads but cannot caption never looks ready. When loading or
that check fails, ``/readyz`` answers 503 with the reason and ``on_failure`` is called (``ccexpert serve`` then
stops with a non-zero exit code).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..samples import sample_pair
from .auth import KeyStore
from .batching import DynamicBatcher
from .errors import ApiError, format_validation
from .metrics import Metrics
from .routers import captions, health, info, metrics
from .schemas import CaptionRequest, PairIn
from .settings import Settings

log = logging.getLogger("ccexpert.service")


class ServiceState:
    """What the routers share (``request.app.state.service``)."""

    def __init__(self, settings: Settings, engine: Any | None, on_failure: Callable[[str], None] | None = None):
        self.settings = settings
        self.engine = engine
        self.on_failure = on_failure
        self.engine_info: dict | None = None
        self.batcher: DynamicBatcher | None = None
        self.ready = False
        self.load_error: str | None = None
        self.inflight = 0
        self.lock = threading.Lock()
        self.metrics = Metrics()
        self.metrics.queue.set_function(lambda: self.batcher.pending if self.batcher else 0)

    def bring_up(self) -> None:
        """Load (if needed), caption the sample pair, start batching. Runs in a thread; a failure is kept for
        /readyz and reported to ``on_failure``."""
        try:
            if self.engine is None:
                from ..engine import CaptionEngine

                log.info("loading model %s", self.settings.model or "(default demo model)")
                self.engine = CaptionEngine.from_pretrained(
                    self.settings.model, device=self.settings.device, dtype=self.settings.dtype,
                    max_batch=self.settings.device_batch,
                )
            self.engine_info = dict(self.engine.info())
            self.check_captions()
            self.batcher = DynamicBatcher(
                self.engine,
                max_batch=self.settings.device_batch,
                max_wait_s=self.settings.max_wait_ms / 1000.0,
                max_pending=self.settings.max_concurrency * self.settings.max_batch,
                on_batch=self.metrics.observe_batch,
            ).start()
            self.ready = True
            self.metrics.ready.set(1)
            log.info("ready: %s", self.engine_info)
        except Exception as exc:  # kept and reported by /readyz and on_failure
            log.exception("the model cannot serve captions")
            self.load_error = f"{type(exc).__name__}: {exc}"
            if self.on_failure is not None:
                self.on_failure(self.load_error)

    def check_captions(self) -> None:
        """Caption the built-in sample pair with the default caption length; raise unless it gives one caption
        with words and a confidence in [0, 1]."""
        size = int(self.engine_info.get("chip_size", 384))
        t0 = time.monotonic()
        results = self.engine.caption([sample_pair(size)], max_new_tokens=self.settings.max_new_tokens)
        if len(results) != 1:
            raise RuntimeError(f"start-up check: 1 sample pair gave {len(results)} results")
        caption, confidence = getattr(results[0], "caption", None), getattr(results[0], "confidence", None)
        if not isinstance(caption, str) or not caption.strip():
            raise RuntimeError(f"start-up check: the sample pair got no caption ({caption!r})")
        if not isinstance(confidence, float) or not math.isfinite(confidence) or not 0.0 <= confidence <= 1.0:
            raise RuntimeError(f"start-up check: the sample pair got confidence {confidence!r}")
        log.info("start-up check: sample pair captioned in %.2f s: %r (confidence %.3f)",
                 time.monotonic() - t0, caption, confidence)

    def shut_down(self) -> None:
        self.ready = False
        if self.batcher is not None:
            self.batcher.stop()


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, checked on Content-Length before reading and
    counted while streaming (chunked uploads), so an oversized body is never held in memory."""

    def __init__(self, app: ASGIApp, limit: int, state: ServiceState):
        self.app, self.limit, self.state = app, limit, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(send, int(length))
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(seen)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge as exc:
            if not started:
                await self._refuse(send, exc.seen)

    async def _refuse(self, send: Send, size: int) -> None:
        error = ApiError(413, "body_too_large", f"request body of {size}+ bytes is over the limit of {self.limit}")
        self.state.metrics.errors.labels(error.code).inc()
        response = JSONResponse(error.body(), status_code=413)
        await response({"type": "http"}, _no_receive, send)


class RequestMetrics:
    """ASGI middleware: request count by route and status, latency by route (pure ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp, state: ServiceState):
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            path = getattr(scope.get("route"), "path", "other")
            self.state.metrics.requests.labels(path, str(status)).inc()
            self.state.metrics.latency.labels(path).observe(time.perf_counter() - t0)


class _TooLarge(Exception):
    def __init__(self, seen: int):
        self.seen = seen


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(
    settings: Settings | None = None, engine: Any | None = None, on_failure: Callable[[str], None] | None = None
) -> FastAPI:
    """The service; ``on_failure(reason)`` is called (from the loading thread) when the model cannot serve."""
    settings = settings or Settings()
    state = ServiceState(settings, engine, on_failure)
    keys = KeyStore.from_file(settings.api_keys_file) if settings.api_keys_file else KeyStore()
    if not keys.enabled and not settings.is_loopback and not settings.insecure:
        raise ValueError(
            f"refusing to serve on {settings.host} without API keys: give --api-keys-file, or --insecure "
            "if this network is trusted"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=state.bring_up, name="ccexpert-load", daemon=True).start()
        yield
        state.shut_down()

    app = FastAPI(
        title="CCExpert change captioning",
        version=__version__,
        description="Captions of what changed between two co-registered chips (before, after).",
        lifespan=lifespan,
    )
    app.state.service = state
    app.state.keys = keys

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        state.metrics.errors.labels(exc.code).inc()
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return await api_error(request, ApiError(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await api_error(request, ApiError(422, "invalid_request", format_validation(exc.errors())))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return await api_error(request, ApiError(500, "internal_error", f"{type(exc).__name__}: {exc}"))

    app.add_middleware(RequestMetrics, state=state)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, state=state)  # outermost
    for router in (health.router, info.router, captions.router, metrics.router):
        app.include_router(router)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (PairIn, CaptionRequest):
                components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

