"""The one error shape of the API: ``{"error": {"code", "message", "id"}}`` with a 4xx/5xx status.

``ERROR_CODES`` is the catalogue (code -> status, meaning): the docs page and docs/SERVING.md list it. Messages
name the field, pair and image at fault; they never carry exception class names or tracebacks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("ccexpert.service")

ERROR_CODES: dict[str, tuple[int, str]] = {
    "not_png": (400, "a chip is not a PNG (chips must be lossless PNG)"),
    "truncated_png": (400, "a chip is a broken or truncated PNG"),
    "wrong_size": (400, "a chip is not chip_size x chip_size (checked on the PNG header, before decoding)"),
    "size_mismatch": (400, "before and after differ in size"),
    "wrong_bands": (400, "an 8-bit chip without exactly 3 colour channels (grey, grey+alpha, RGBA)"),
    "wrong_mode": (400, "a chip that is not 8 bits per sample (1/2/4/16-bit) or is a palette PNG"),
    "bad_base64": (400, "a JSON chip is not valid base64"),
    "invalid_json": (400, "the body is not JSON (syntax, encoding, or nested too deeply)"),
    "invalid_multipart": (400, "the multipart body cannot be parsed (boundary, too many parts)"),
    "bad_request": (400, "the HTTP request is malformed"),
    "unauthorized": (401, "missing or wrong API key (WWW-Authenticate: Bearer)"),
    "not_found": (404, "no such path"),
    "method_not_allowed": (405, "wrong method for this path (see the Allow header)"),
    "body_timeout": (408, "the request body did not arrive within body_timeout_s (the connection is closed)"),
    "body_too_large": (413, "the body is over max_body_bytes"),
    "unsupported_media_type": (415, "neither application/json nor multipart/form-data"),
    "invalid_request": (422, "unknown, missing or out-of-range field (message names it)"),
    "empty_batch": (422, "no pairs"),
    "batch_too_large": (422, "more than max_batch pairs"),
    "duplicate_id": (422, "a pair id appears twice in one request"),
    "overloaded": (
        429,
        "too many requests in flight (in all, or for this key), or too many bytes being "
        "received; retry after Retry-After seconds",
    ),
    "auth_throttled": (
        429,
        "too many wrong API keys from this client address; retry after Retry-After seconds (any key is refused "
        "until then)",
    ),
    "header_too_large": (431, "the Authorization header or all headers together are too large"),
    "internal_error": (500, "a bug: logged on the server with a traceback"),
    "engine_error": (500, "the model failed on a pair"),
    "not_ready": (503, "the model is loading (Retry-After)"),
    "model_failed": (503, "the model cannot load or caption its start-up sample (will not recover)"),
    "shutting_down": (
        503,
        "the server is stopping (SIGTERM/SIGINT): the request was not finished within its grace period "
        "(Retry-After; resend the same ids)",
    ),
    "timeout": (
        503,
        "the results did not come within request_timeout_s (Retry-After; a resend is answered "
        "from the cache once computed)",
    ),
}


class ApiError(Exception):
    """Raised anywhere in a request; the app turns it into the JSON error body (and counts it by code)."""

    def __init__(
        self, status: int, code: str, message: str, pair_id: str | None = None, headers: Mapping[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.pair_id = pair_id
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "id": self.pair_id}}


def format_validation(errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic errors as one line naming each bad field: ``pairs.0.colour: Extra inputs are not permitted``."""
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {e.get('msg')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def install_error_handlers(app: FastAPI, metrics: Any) -> None:
    """Every error leaves as the one error shape, counted by code (``metrics.errors``): ``ApiError``, Starlette's
    HTTP errors (404, 405, ...), request validation (422 ``invalid_request``) and any other exception (500
    ``internal_error``, its traceback in the log only)."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        metrics.errors.labels(exc.code).inc()
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
