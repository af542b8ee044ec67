"""``POST /v1/captions``: a batch of chip pairs (base64 PNG in JSON, or multipart files) -> one result per id."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..auth import Caller, require_key
from ..batching import Overloaded
from ..errors import ApiError, format_validation
from ..images import b64decode, decode_pair
from ..schemas import ERROR_RESPONSES, MULTIPART_SCHEMA, PAIR_ID_PATTERN, CaptionRequest, CaptionResponse
from .info import service_info

router = APIRouter(prefix="/v1", tags=["captions"])

_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CaptionRequest"}},
            "multipart/form-data": {"schema": MULTIPART_SCHEMA},
        },
    }
}
_MULTIPART_FIELDS = {"id", "before", "after", "max_new_tokens"}


class _Slot:
    """Counts a caption request in flight; over ``max_concurrency`` -> 429 before the body is read."""

    def __init__(self, service):
        self.service = service

    def __enter__(self):
        s = self.service
        with s.lock:
            if s.inflight >= s.settings.max_concurrency:
                raise ApiError(429, "overloaded", f"{s.inflight} requests in flight (limit "
                               f"{s.settings.max_concurrency}); retry later", headers={"Retry-After": "1"})
            s.inflight += 1
            s.metrics.inflight.set(s.inflight)
        return self

    def __exit__(self, *exc):
        s = self.service
        with s.lock:
            s.inflight -= 1
            s.metrics.inflight.set(s.inflight)


@router.post(
    "/captions",
    response_model=CaptionResponse,
    responses=dict(ERROR_RESPONSES),
    openapi_extra=_REQUEST_BODY,
    summary="Caption what changed in each chip pair",
)
async def post_captions(request: Request, caller: Caller = Depends(require_key)) -> JSONResponse:
    service = request.app.state.service
    info = service_info(service)  # 503 model_failed / not_ready before anything is read
    if not service.ready:
        raise ApiError(503, "not_ready", "model is loading", headers={"Retry-After": "5"})
    with _Slot(service):
        ids, raw_pairs, max_new_tokens = await _read_body(request)
        settings = service.settings
        if not ids:
            raise ApiError(422, "empty_batch", "pairs is empty: send 1 to max_batch pairs")
        if len(ids) > settings.max_batch:
            raise ApiError(422, "batch_too_large", f"{len(ids)} pairs is over max_batch {settings.max_batch}")
        seen: set[str] = set()
        for pair_id in ids:
            if pair_id in seen:
                raise ApiError(422, "duplicate_id", f"pair id {pair_id!r} appears more than once", pair_id)
            seen.add(pair_id)
        # capped, not refused: clients (the plugin) send their default without knowing the server's setting
        tokens = min(max_new_tokens or settings.max_new_tokens, settings.max_new_tokens)
        pairs = await run_in_threadpool(_decode_all, ids, raw_pairs, info["chip_size"])
        # idempotency key: a resend (any connection) of the same id with the same chips is answered once
        keys = [(caller.key, pair_id, _digest(b, a), tokens) for pair_id, (b, a) in zip(ids, raw_pairs, strict=True)]
        try:
            futures = service.batcher.submit(caller.fairness_id, pairs, max_new_tokens=tokens, keys=keys)
        except Overloaded as exc:
            retry = str(math.ceil(exc.retry_after))
            raise ApiError(429, "overloaded", str(exc), headers={"Retry-After": retry}) from None
        try:
            outcomes = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        except Exception as exc:
            service.metrics.pairs.labels("error").inc(len(ids))
            raise ApiError(500, "engine_error", f"captioning failed: {type(exc).__name__}: {exc}") from exc
    service.metrics.pairs.labels("ok").inc(len(ids))
    results = [
        {
            "id": pair_id,
            "caption": o.result.caption,
            "confidence": float(o.result.confidence),
            "changed": bool(o.result.changed),
            "status": "ok",
            "error": None,
            "timing_ms": round(o.timing_ms, 2),
        }
        for pair_id, o in zip(ids, outcomes, strict=True)
    ]
    return JSONResponse({"model": info["model_name"], "results": results})


def _digest(before: bytes, after: bytes) -> str:
    h = hashlib.sha1(before)
    h.update(b"|")
    h.update(after)
    return h.hexdigest()


def _decode_all(ids: list[str], raw_pairs: list[tuple[bytes, bytes]], chip_size: int):
    return [decode_pair(b, a, pair_id, chip_size) for pair_id, (b, a) in zip(ids, raw_pairs, strict=True)]


async def _read_body(request: Request) -> tuple[list[str], list[tuple[bytes, bytes]], int | None]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return await _read_json(request)
    if content_type == "multipart/form-data":
        return await _read_multipart(request)
    raise ApiError(415, "unsupported_media_type",
                   f"content-type {content_type or '(none)'}: send application/json or multipart/form-data")


async def _read_json(request: Request):
    body = await request.body()
    return await run_in_threadpool(_parse_json, body)  # JSON + base64 of megabytes: off the event loop


def _parse_json(body: bytes):
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    try:
        parsed = CaptionRequest.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", format_validation(exc.errors())) from None
    ids = [p.id for p in parsed.pairs]
    raw = [(b64decode(p.before, p.id, "before"), b64decode(p.after, p.id, "after")) for p in parsed.pairs]
    return ids, raw, parsed.max_new_tokens


async def _read_multipart(request: Request):
    async with request.form(max_files=4096, max_fields=4096) as form:  # closes the spooled files
        return await _read_form(form)


async def _read_form(form):
    unknown = sorted(set(form.keys()) - _MULTIPART_FIELDS)
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown form field(s): {', '.join(unknown)}")
    ids = [str(v) for v in form.getlist("id")]
    befores, afters = form.getlist("before"), form.getlist("after")
    if not (len(ids) == len(befores) == len(afters)):
        raise ApiError(422, "invalid_request", f"form has {len(ids)} id, {len(befores)} before and {len(afters)} "
                       "after fields: send one of each per pair, in the same order")
    for pair_id in ids:
        if not re.match(PAIR_ID_PATTERN, pair_id):
            raise ApiError(422, "invalid_request", f"id {pair_id[:40]!r} does not match {PAIR_ID_PATTERN}")
    raw = []
    for pair_id, b, a in zip(ids, befores, afters, strict=True):
        if not isinstance(b, UploadFile) or not isinstance(a, UploadFile):
            raise ApiError(422, "invalid_request", f"pair {pair_id!r}: before and after must be files", pair_id)
        raw.append((await b.read(), await a.read()))
    tokens = None
    if "max_new_tokens" in form:
        try:
            tokens = int(str(form["max_new_tokens"]))
        except ValueError:
            raise ApiError(422, "invalid_request", "max_new_tokens must be an integer") from None
        if tokens < 1:
            raise ApiError(422, "invalid_request", "max_new_tokens must be >= 1")
    return ids, raw, tokens
