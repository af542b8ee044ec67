"""Request and response bodies of the API (docs/ARCHITECTURE.md "Wire format"). Unknown fields are refused."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PAIR_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class PairIn(Strict):
    id: str = Field(..., pattern=PAIR_ID_PATTERN, description="idempotency key, e.g. the tile id")
    before: str = Field(..., description="base64 PNG, 8-bit RGB, chip_size x chip_size")
    after: str = Field(..., description="base64 PNG, same size as before")


class CaptionRequest(Strict):
    pairs: list[PairIn] = Field(..., description="1..max_batch pairs with distinct ids")
    max_new_tokens: int | None = Field(None, ge=1, le=512, description="default and cap: the server's max_new_tokens")


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


class StatusResponse(Strict):
    status: str


# the multipart form, documented in OpenAPI next to the JSON body
MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["id", "before", "after"],
    "properties": {
        "id": {"type": "array", "items": {"type": "string", "pattern": PAIR_ID_PATTERN},
               "description": "one per pair, repeated field"},
        "before": {"type": "array", "items": {"type": "string", "format": "binary"},
                   "description": "PNG files, in the same order as id"},
        "after": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "PNG files, in the same order as id"},
        "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": 512},
    },
    "additionalProperties": False,
}

ERROR_RESPONSES = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "a chip is not a valid PNG of the expected size and bands (error.id names the pair)",
        401: "missing or wrong API key",
        413: "body over max_body_bytes",
        415: "neither application/json nor multipart/form-data",
        422: "invalid request: unknown or missing field, empty or oversized batch, duplicate ids",
        429: "overloaded; see Retry-After",
        503: "model not loaded yet",
    }.items()
}
