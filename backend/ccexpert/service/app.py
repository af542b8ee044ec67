"""``create_app(settings, engine)``: assembles the FastAPI application, as vLLM's entrypoints do:

- ``state.py``: ``ServiceState`` (settings, engine, batcher, readiness, limits, metrics) and the start-up
  sequence (load in a background thread, caption a sample pair, start batching);
- ``serving.py``: ``CaptionServing``, the logic behind the routes (admission, parsing, idempotency, batching,
  result shaping);
- ``routers/``: thin routes over ``CaptionServing``; ``schemas.py``: the protocol (request/response models, the
  OpenAPI document); ``errors.py``: the one error envelope;
- ``middleware.py``: ``RequestGuard`` (header and body limits, before routing) and ``RequestMetrics`` (outermost:
  request metrics and the access log).

``ccexpert serve`` and the Ray Serve ingress (``ccexpert.ray_serve``) both serve the app this builds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from .. import __version__
from .auth import AuthThrottle, KeyStore
from .errors import install_error_handlers
from .middleware import RequestGuard, RequestMetrics
from .routers import auth, captions, docs, health, info, metrics
from .schemas import openapi_schema
from .serving import CaptionServing
from .settings import Settings
from .state import ServiceState


def create_app(
    settings: Settings | None = None,
    engine: Any | None = None,
    on_failure: Callable[[str], None] | None = None,
    keys: KeyStore | None = None,
) -> FastAPI:
    """The service; ``on_failure(reason)`` is called (from the loading thread) when the model cannot serve.
    ``keys``: the API keys when they come from elsewhere than ``settings.api_keys_file`` (the Ray ingress)."""
    settings = settings or Settings()
    state = ServiceState(settings, engine, on_failure)
    if keys is None:
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
        state.loop = asyncio.get_running_loop()
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
    app.state.serving = CaptionServing(state)
    app.state.keys = keys
    app.state.auth_throttle = AuthThrottle(settings.auth_failures_burst, settings.auth_failures_per_s)
    app.state.metrics_protected = settings.metrics_protected(keys.enabled)

    install_error_handlers(app, state.metrics)
    app.add_middleware(RequestGuard, state=state)
    app.add_middleware(RequestMetrics, state=state)  # outermost: sees the guard's refusals too
    for router in (health.router, info.router, auth.router, captions.router, metrics.router, docs.router):
        app.include_router(router)

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_schema(app, settings.max_batch, keys.enabled, app.state.metrics_protected)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


__all__ = ["ServiceState", "create_app"]
