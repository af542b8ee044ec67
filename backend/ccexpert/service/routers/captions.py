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
from starlette.exceptions import HTTPException

from ..auth import Caller, require_key
from ..batching import Overloaded
from ..errors import ApiError, format_validation
from ..images import b64decode, decode_pair
from ..schemas import (
    ERROR_RESPONSES,
    MAX_NEW_TOKENS_LIMIT,
    MULTIPART_SCHEMA,
    PAIR_ID_PATTERN,
    CaptionRequest,
    CaptionResponse,
)
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
    settings = service.settings
    # the whole body first (deadline, size and memory budget are the RequestGuard's): a slow or idle client holds
    # no in-flight slot while it sends
    ids, raw_pairs, max_new_tokens = await _read_body(request)
    request.state.pairs = len(ids)
    if not ids:
        raise ApiError(422, "empty_batch", "pairs is empty: send 1 to max_batch pairs")
    if len(ids) > settings.max_batch:
        raise ApiError(422, "batch_too_large", f"{len(ids)} pairs is over max_batch {settings.max_batch}")
    seen: set[str] = set()
    for pair_id in ids:
        if pair_id in seen:
            raise ApiError(422, "duplicate_id", f"pair id {pair_id!r} appears more than once", pair_id)
        seen.add(pair_id)
    who = f"key {caller.key!r}" if caller.key else f"connection {caller.peer}"
    with service.limiter.slot(caller.fairness_id, who):
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
        waiting = [asyncio.wrap_future(f) for f in futures]
        # asyncio.wait cancels nothing: pairs left running finish into the cache, so a resend gets them
        _, pending = await asyncio.wait(waiting, timeout=settings.request_timeout_s)
        if pending:
            for future in pending:
                future.add_done_callback(_retrieve)
            raise ApiError(503, "timeout", f"{len(pending)} of {len(ids)} pairs not captioned within "
                           f"{settings.request_timeout_s:g} s; resend the same ids later",
                           headers={"Retry-After": "5"})
        failures = [future.exception() for future in waiting if future.exception() is not None]  # all retrieved
        if failures:
            service.metrics.pairs.labels("error").inc(len(ids))
            retry_after = getattr(failures[0], "retry_after", None)
            if retry_after is not None:  # the engine is between replicas (one died): the same ids will work again
                raise ApiError(503, "unavailable", f"captioning is unavailable: {failures[0]}; resend the same ids",
                               headers={"Retry-After": str(math.ceil(retry_after))}) from failures[0]
            raise ApiError(500, "engine_error", f"captioning failed: {failures[0]}") from failures[0]
        outcomes = [future.result() for future in waiting]
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


def _retrieve(future: asyncio.Future) -> None:
    """Mark a late pair's exception as seen (it was answered 503 already)."""
    if not future.cancelled():
        future.exception()


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
    except RecursionError:
        raise ApiError(400, "invalid_json", "body is not valid JSON: nested too deeply") from None
    try:
        parsed = CaptionRequest.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", format_validation(exc.errors())) from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "body nested too deeply") from None
    ids = [p.id for p in parsed.pairs]
    raw = [(b64decode(p.before, p.id, "before"), b64decode(p.after, p.id, "after")) for p in parsed.pairs]
    return ids, raw, parsed.max_new_tokens


async def _read_multipart(request: Request):
    try:
        form = await request.form(max_files=4096, max_fields=4096)
    except HTTPException as exc:  # starlette's MultiPartException: no boundary, too many parts, bad header
        raise ApiError(400, "invalid_multipart", f"multipart body cannot be parsed: {exc.detail}") from None
    try:
        return await _read_form(form)
    finally:
        await form.close()  # the spooled files


async def _read_form(form):
    unknown = sorted(set(form.keys()) - _MULTIPART_FIELDS)
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown form field(s): {', '.join(unknown)}")
    if any(not isinstance(v, str) for v in form.getlist("id")):
        raise ApiError(422, "invalid_request", "id fields must be plain form fields, not files")
    ids = list(form.getlist("id"))
    befores, afters = form.getlist("before"), form.getlist("after")
    if not (len(ids) == len(befores) == len(afters)):
        raise ApiError(422, "invalid_request", f"form has {len(ids)} id, {len(befores)} before and {len(afters)} "
                       "after fields: send one of each per pair, in the same order")
    for pair_id in ids:
        if not re.fullmatch(PAIR_ID_PATTERN, pair_id):
            raise ApiError(422, "invalid_request", f"id {pair_id[:40]!r} does not match {PAIR_ID_PATTERN}")
    raw = []
    for pair_id, b, a in zip(ids, befores, afters, strict=True):
        if not isinstance(b, UploadFile) or not isinstance(a, UploadFile):
            raise ApiError(422, "invalid_request", f"pair {pair_id!r}: before and after must be files", pair_id)
        raw.append((await b.read(), await a.read()))
    tokens = None
    if "max_new_tokens" in form:
        values = form.getlist("max_new_tokens")
        text = values[-1] if len(values) == 1 and isinstance(values[-1], str) else None
        # the JSON bounds: decimal digits only (no sign, spaces, underscores or other scripts' digits), 1..512
        if text is None or not re.fullmatch(r"[0-9]{1,4}", text) or not 1 <= int(text) <= MAX_NEW_TOKENS_LIMIT:
            raise ApiError(422, "invalid_request", f"max_new_tokens must be one integer from 1 to "
                           f"{MAX_NEW_TOKENS_LIMIT}, got {str(values[0])[:20]!r}")
        tokens = int(text)
    return ids, raw, tokens
