"""Request and response bodies of the API (docs/ARCHITECTURE.md "Wire format"). Unknown fields are refused."""

from __future__ import annotations

from typing import Any, Literal

from ccexpert_changes.core.context import MAX_CONTEXT_CHARS
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

PAIR_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"
MAX_NEW_TOKENS_LIMIT = 512  # the bound of the wire format; the server's max_new_tokens caps it further
CONTEXT_DESCRIPTION = (
    f"the run's context note (e.g. 'after the May 2011 tornado'): one line, at most {MAX_CONTEXT_CHARS} characters "
    "once stripped, no control characters; empty means none. Models whose /v1/info has uses_context: true read it "
    "in their prompt; the others (CCExpert) ignore it. Part of each pair's idempotency key"
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class PairIn(Strict):
    id: str = Field(..., pattern=PAIR_ID_PATTERN, description="idempotency key, e.g. the tile id")
    before: str = Field(..., description="base64 PNG, 8-bit RGB, chip_size x chip_size")
    after: str = Field(..., description="base64 PNG, same size as before")


class CaptionRequest(Strict):
    pairs: list[PairIn] = Field(..., description="1..max_batch pairs with distinct ids")
    max_new_tokens: StrictInt | None = Field(
        None,
        ge=1,
        le=MAX_NEW_TOKENS_LIMIT,
        description="an integer (not a string or boolean); default and cap: the server's max_new_tokens",
    )
    context: StrictStr | None = Field(None, description=CONTEXT_DESCRIPTION)


class PairResult(Strict):
    id: str
    caption: str
    confidence: float
    changed: bool
    status: Literal["ok"] = "ok"
    error: None = None
    timing_ms: float = Field(..., description="queue + device time of this pair")


class CaptionResponse(Strict):
    model: str
    results: list[PairResult]


class ErrorDetail(Strict):
    code: str
    message: str
    id: str | None = None


class ErrorResponse(Strict):
    error: ErrorDetail


class InfoResponse(Strict):
    api_version: Literal["1"] = "1"
    model_name: str
    model_version: str
    chip_size: int
    bands: int
    max_batch: int
    max_body_bytes: int
    device: str
    dtype: str
    demo: bool
    family: str = Field(..., description="model family: ccexpert, llava_onevision, qwen2_vl, qwen2_5_vl")
    change_expert: bool = Field(..., description="a change-captioning expert (CCExpert), or a general VLM prompted")
    max_in_flight: int = Field(
        ..., description="requests a client should keep here at once (clients' default: two per model replica)"
    )
    gsd_m: float | None = Field(
        ...,
        description="metres per pixel of the imagery the model was trained on (model "
        "card); clients warn when a raster is far from it; null when unknown",
    )
    uses_context: bool = Field(
        ..., description="whether the model reads a request's context note (general VLMs: in their prompt)"
    )


class StatusResponse(Strict):
    status: str


class AuthCheckResponse(Strict):
    status: Literal["ok"] = "ok"
    label: str | None = Field(..., description="the label of the key in the server's keys file; null without keys")


# the multipart form, documented in OpenAPI next to the JSON body
MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["id", "before", "after"],
    "properties": {
        "id": {
            "type": "array",
            "items": {"type": "string", "pattern": PAIR_ID_PATTERN},
            "description": "one per pair, repeated field",
        },
        "before": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "PNG files, in the same order as id",
        },
        "after": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "PNG files, in the same order as id",
        },
        "max_new_tokens": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_NEW_TOKENS_LIMIT,
            "description": "decimal digits only",
        },
        "context": {"type": "string", "maxLength": MAX_CONTEXT_CHARS, "description": CONTEXT_DESCRIPTION},
    },
    "additionalProperties": False,
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "a chip is not a valid PNG of the expected size and bands (error.id names the pair); body not JSON",
        401: "missing or wrong API key",
        408: "the body did not arrive within body_timeout_s",
        413: "body over max_body_bytes",
        415: "neither application/json nor multipart/form-data",
        422: "invalid request: unknown or missing field, empty or oversized batch, duplicate ids, a context note "
        "that is too long or not one line",
        429: "overloaded; see Retry-After",
        431: "Authorization header over 8 KiB or headers over 64 KiB",
        500: "engine_error (the model failed on a pair) or internal_error",
        503: "model not loaded yet, model failed, a replica is being replaced (unavailable: resend), or the results "
        "took longer than request_timeout_s",
    }.items()
}


def _error_response(status: int) -> dict:
    """An ERROR_RESPONSES entry as it appears in the OpenAPI document."""
    return {
        "description": ERROR_RESPONSES[status]["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def common_responses(path: str, method: str, metrics_protected: bool) -> dict[str, dict]:
    """Responses any route can give beside its own: 431 (headers), 401 where a key is checked."""
    out = {"431": _error_response(431)}
    if path == "/v1/auth/check" or (path == "/metrics" and metrics_protected):
        out["401"] = _error_response(401)
    return out


# POST /v1/captions reads its body itself (JSON or multipart): both are documented here
CAPTIONS_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CaptionRequest"}},
            "multipart/form-data": {"schema": MULTIPART_SCHEMA},
        },
    }
}
MULTIPART_FIELDS = frozenset({"id", "before", "after", "max_new_tokens", "context"})  # MULTIPART_SCHEMA's properties


def openapi_schema(app: Any, max_batch: int, keys_enabled: bool, metrics_protected: bool) -> dict:
    """The service's OpenAPI document: FastAPI's, plus the request models of the hand-read caption body, the batch
    bounds of these settings, the responses every route can give and, with API keys, the bearer scheme."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (PairIn, CaptionRequest):
        components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    # the batch bounds are settings: 1..max_batch pairs (JSON array, and each multipart field)
    components["CaptionRequest"]["properties"]["pairs"].update(minItems=1, maxItems=max_batch)
    post = schema["paths"]["/v1/captions"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    for name in ("id", "before", "after"):
        form[name] = {**form[name], "minItems": 1, "maxItems": max_batch}
    keyed = {"/v1/captions", "/v1/auth/check"} | ({"/metrics"} if metrics_protected else set())
    if keys_enabled:
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            for status, response in common_responses(path, method, metrics_protected).items():
                operation.setdefault("responses", {}).setdefault(status, response)
            if keys_enabled and path in keyed:
                operation["security"] = [{"bearer": []}]
    return schema
