"""``create_app(settings, engine)``: the FastAPI application (routers, auth, limits, batching, metrics).

With ``engine=None`` the model is loaded in a background thread at startup, so ``/healthz`` answers at
once. ``/readyz`` turns 200 only once the model is loaded and has captioned a built-in sample pair
(``ccexpert.samples``) through the engine: a model that loads but cannot caption never looks ready. When loading or
that check fails, ``/readyz`` answers 503 with the reason and ``on_failure`` is called (``ccexpert serve`` then
stops with a non-zero exit code).

Limits (``limits.py``): header sizes, body size, body deadline and body memory are checked by ``RequestGuard``
before and while the body is read; the in-flight slot of a caption request (global and per key) is taken only once
its body is in. ``/docs`` is a self-contained page made from the OpenAPI schema (``docs.py``).
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
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..samples import sample_pair
from .auth import KeyStore
from .batching import DynamicBatcher
from .docs import render_docs
from .errors import ApiError, format_validation
from .limits import InflightLimiter, RequestGuard, RequestMetrics
from .metrics import Metrics
from .routers import auth, captions, health, info, metrics
from .schemas import CaptionRequest, PairIn, common_responses
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
        self.limiter = InflightLimiter(self)
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
                workers=int(getattr(self.engine, "parallelism", 1)),
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
    if settings.metrics_require_key and not keys.enabled:
        raise ValueError("metrics_require_key needs API keys: give --api-keys-file")

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
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: /docs is served from the schema instead
        redoc_url=None,
    )
    app.state.service = state
    app.state.keys = keys
    app.state.metrics_protected = settings.metrics_protected(keys.enabled)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        state.metrics.errors.labels(exc.code).inc()
        request.state.error_code = exc.code
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return await api_error(request, ApiError(exc.status_code, code, str(exc.detail), headers=exc.headers))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await api_error(request, ApiError(422, "invalid_request", format_validation(exc.errors())))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)  # a bug: the traceback is in the log only
        return await api_error(request, ApiError(500, "internal_error", "internal error; see the server log"))

    app.add_middleware(RequestGuard, state=state)
    app.add_middleware(RequestMetrics, state=state)  # outermost: sees the guard's refusals too
    for router in (health.router, info.router, auth.router, captions.router, metrics.router):
        app.include_router(router)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (PairIn, CaptionRequest):
                components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            # the batch bounds are settings: 1..max_batch pairs (JSON array, and each multipart field)
            components["CaptionRequest"]["properties"]["pairs"].update(minItems=1, maxItems=settings.max_batch)
            post = schema["paths"]["/v1/captions"]["post"]
            form = post["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
            for name in ("id", "before", "after"):
                form[name] = {**form[name], "minItems": 1, "maxItems": settings.max_batch}
            keyed = {"/v1/captions", "/v1/auth/check"} | ({"/metrics"} if app.state.metrics_protected else set())
            if keys.enabled:
                schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, methods in schema["paths"].items():
                for method, operation in methods.items():
                    for status, response in common_responses(path, method, app.state.metrics_protected).items():
                        operation.setdefault("responses", {}).setdefault(status, response)
                    if keys.enabled and path in keyed:
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    docs_page: list[str] = []

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        if not docs_page:
            docs_page.append(render_docs(app.openapi()))
        return HTMLResponse(docs_page[0])

    return app
