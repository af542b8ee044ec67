"""``CaptionServing``: the service's logic behind the routers (``app.state.serving``), as vLLM's ``OpenAIServing*``
classes are behind its entrypoints: what the API advertises (``info``, ``readiness``) and ``POST /v1/captions``
end to end:

- admission: 503 while the model loads or after it failed, then the whole body is read (its size, deadline and
  memory budget are the ``RequestGuard``'s) before the in-flight slot (global and per key) is taken, so a slow or
  idle client holds no slot while it sends;
- parsing: a JSON body (``CaptionRequest``, base64 PNG) or a multipart form (``id``/``before``/``after`` repeated,
  ``max_new_tokens``), both into ``(ids, raw PNG pairs, max_new_tokens)``; batch bounds and duplicate ids;
- idempotency: each pair's key is (API key, pair id, digest of its two PNGs, max_new_tokens): a resend of the same
  ids with the same chips (any connection) is answered once, from the batcher's cache;
- batching: the pairs go to the ``DynamicBatcher`` (429 when it is full); results are awaited up to
  ``request_timeout_s`` (pairs left running finish into the cache, so a resend gets them);
- shaping: one result per id, in order, or one error for the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from ..prefetch import worker_pool
from .auth import Caller
from .batching import Overloaded
from .errors import ApiError, format_validation
from .images import b64decode, decode_pair
from .schemas import MAX_NEW_TOKENS_LIMIT, MULTIPART_FIELDS, PAIR_ID_PATTERN, CaptionRequest
from .state import ServiceState

RawPairs = list[tuple[bytes, bytes]]
ParsedBody = tuple[list[str], RawPairs, int | None]


class CaptionServing:
    """The captioning API over one :class:`ServiceState` (engine, batcher, limits, metrics)."""

    def __init__(self, state: ServiceState):
        self.state = state

    # -- what the service advertises -----------------------------------------------------------------------------

    def info(self) -> dict:
        """``GET /v1/info``: 503 ``model_failed`` / ``not_ready`` until the model is loaded and captions."""
        service = self.state
        if service.load_error is not None:  # loaded perhaps, but cannot caption: nothing to advertise
            raise ApiError(503, "model_failed", service.load_error)
        if service.engine_info is None:
            raise ApiError(503, "not_ready", "model is loading", headers={"Retry-After": "5"})
        return service.engine_info.to_wire(
            max_batch=service.settings.max_batch,
            max_body_bytes=service.settings.max_body_bytes,
            max_in_flight=self.max_in_flight(),
        )

    def max_in_flight(self) -> int:
        """Requests one client should keep here at once: two per engine that works in parallel (one computing,
        one waiting, so the device never idles between a client's batches; N Ray Serve replicas -> 2N), never
        more than one key may have in flight (more would be answered 429)."""
        engines = max(1, int(getattr(self.state.engine, "parallelism", 1) or 1))
        return max(1, min(2 * engines, self.state.settings.per_key_limit))

    def readiness(self) -> dict | JSONResponse:
        """``GET /readyz``: ``{"status": "ready"}``, else 503 with the reason (``Retry-After`` while loading)."""
        service = self.state
        if service.ready:
            return {"status": "ready"}
        if service.load_error:  # it will not recover: no Retry-After
            body = {"error": {"code": "model_failed", "message": service.load_error, "id": None}}
            return JSONResponse(body, status_code=503)
        message = "model is loading or captioning its start-up sample"
        body = {"error": {"code": "not_ready", "message": message, "id": None}}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    # -- POST /v1/captions ---------------------------------------------------------------------------------------

    async def create_captions(self, request: Request, caller: Caller) -> dict:
        """The response body of ``POST /v1/captions`` (``CaptionResponse``); errors raise :class:`ApiError`."""
        service = self.state
        info = self.info()  # 503 model_failed / not_ready before anything is read
        if not service.ready or service.batcher is None:
            raise ApiError(503, "not_ready", "model is loading", headers={"Retry-After": "5"})
        batcher = service.batcher
        settings = service.settings
        # the whole body first (deadline, size and memory budget are the RequestGuard's): a slow or idle client
        # holds no in-flight slot while it sends
        ids, raw_pairs, max_new_tokens = await read_body(request)
        request.state.pairs = len(ids)
        check_batch(ids, settings.max_batch)
        who = f"key {caller.key!r}" if caller.key else f"connection {caller.peer}"
        with service.limiter.slot(caller.fairness_id, who):
            # capped, not refused: clients (the plugin) send their default without knowing the server's setting
            tokens = min(max_new_tokens or settings.max_new_tokens, settings.max_new_tokens)
            pairs = await run_in_threadpool(_decode_all, ids, raw_pairs, info["chip_size"])
            # idempotency key: a resend (any connection) of the same id with the same chips is answered once
            keys = [(caller.key, pair_id, digest(b, a), tokens) for pair_id, (b, a) in zip(ids, raw_pairs, strict=True)]
            try:
                futures = batcher.submit(caller.fairness_id, pairs, max_new_tokens=tokens, keys=keys)
            except Overloaded as exc:
                retry = str(math.ceil(exc.retry_after))
                raise ApiError(429, "overloaded", str(exc), headers={"Retry-After": retry}) from None
            waiting = [asyncio.wrap_future(f) for f in futures]
            # asyncio.wait cancels nothing: pairs left running finish into the cache, so a resend gets them
            _, pending = await asyncio.wait(waiting, timeout=settings.request_timeout_s)
            if pending:
                for future in pending:
                    future.add_done_callback(_retrieve)
                raise ApiError(
                    503,
                    "timeout",
                    f"{len(pending)} of {len(ids)} pairs not captioned within "
                    f"{settings.request_timeout_s:g} s; resend the same ids later",
                    headers={"Retry-After": "5"},
                )
            failures = [exc for exc in (future.exception() for future in waiting) if exc is not None]  # all seen
            if failures:
                service.metrics.pairs.labels("error").inc(len(ids))
                retry_after = getattr(failures[0], "retry_after", None)
                if retry_after is not None:  # the engine is between replicas (one died): the same ids will work again
                    raise ApiError(
                        503,
                        "unavailable",
                        f"captioning is unavailable: {failures[0]}; resend the same ids",
                        headers={"Retry-After": str(math.ceil(retry_after))},
                    ) from failures[0]
                raise ApiError(500, "engine_error", f"captioning failed: {failures[0]}") from failures[0]
            outcomes = [future.result() for future in waiting]
        service.metrics.pairs.labels("ok").inc(len(ids))
        return {"model": info["model_name"], "results": shape_results(ids, outcomes)}


def check_batch(ids: list[str], max_batch: int) -> None:
    """1..max_batch pairs, each id once."""
    if not ids:
        raise ApiError(422, "empty_batch", "pairs is empty: send 1 to max_batch pairs")
    if len(ids) > max_batch:
        raise ApiError(422, "batch_too_large", f"{len(ids)} pairs is over max_batch {max_batch}")
    seen: set[str] = set()
    for pair_id in ids:
        if pair_id in seen:
            raise ApiError(422, "duplicate_id", f"pair id {pair_id!r} appears more than once", pair_id)
        seen.add(pair_id)


def shape_results(ids: list[str], outcomes: list[Any]) -> list[dict]:
    """The batcher's outcomes (``result`` from the engine, ``timing_ms``) as ``PairResult`` dicts, one per id."""
    return [
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


def digest(before: bytes, after: bytes) -> str:
    """The chips' part of a pair's idempotency key."""
    h = hashlib.sha1(before)
    h.update(b"|")
    h.update(after)
    return h.hexdigest()


def _retrieve(future: asyncio.Future) -> None:
    """Mark a late pair's exception as seen (it was answered 503 already)."""
    if not future.cancelled():
        future.exception()


def _decode_all(ids: list[str], raw_pairs: RawPairs, chip_size: int) -> list:
    """PNG decoding in the shared worker pool (PIL releases the GIL while it inflates): a big request uses every
    core; the first bad pair's error is raised, as before."""
    decoded = worker_pool().map(decode_pair, *zip(*raw_pairs, strict=True), ids, [chip_size] * len(ids))
    return list(decoded)


# -- parsing: JSON or multipart into (ids, raw PNG pairs, max_new_tokens) ------------------------------------------


async def read_body(request: Request) -> ParsedBody:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return await _read_json(request)
    if content_type == "multipart/form-data":
        return await _read_multipart(request)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"content-type {content_type or '(none)'}: send application/json or multipart/form-data",
    )


async def _read_json(request: Request) -> ParsedBody:
    body = await request.body()
    return await run_in_threadpool(parse_json, body)  # JSON + base64 of megabytes: off the event loop


def parse_json(body: bytes) -> ParsedBody:
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


async def _read_multipart(request: Request) -> ParsedBody:
    try:
        form = await request.form(max_files=4096, max_fields=4096)
    except HTTPException as exc:  # starlette's MultiPartException: no boundary, too many parts, bad header
        raise ApiError(400, "invalid_multipart", f"multipart body cannot be parsed: {exc.detail}") from None
    try:
        return await parse_form(form)
    finally:
        await form.close()  # the spooled files


async def parse_form(form: FormData) -> ParsedBody:
    unknown = sorted(set(form.keys()) - MULTIPART_FIELDS)
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown form field(s): {', '.join(unknown)}")
    id_values = form.getlist("id")
    ids = [v for v in id_values if isinstance(v, str)]
    if len(ids) != len(id_values):
        raise ApiError(422, "invalid_request", "id fields must be plain form fields, not files")
    befores, afters = form.getlist("before"), form.getlist("after")
    if not (len(ids) == len(befores) == len(afters)):
        raise ApiError(
            422,
            "invalid_request",
            f"form has {len(ids)} id, {len(befores)} before and {len(afters)} "
            "after fields: send one of each per pair, in the same order",
        )
    for pair_id in ids:
        if not re.fullmatch(PAIR_ID_PATTERN, pair_id):
            raise ApiError(422, "invalid_request", f"id {pair_id[:40]!r} does not match {PAIR_ID_PATTERN}")
    raw: RawPairs = []
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
            raise ApiError(
                422,
                "invalid_request",
                f"max_new_tokens must be one integer from 1 to {MAX_NEW_TOKENS_LIMIT}, got {str(values[0])[:20]!r}",
            )
        tokens = int(text)
    return ids, raw, tokens


__all__ = ["CaptionServing", "check_batch", "digest", "parse_form", "parse_json", "read_body", "shape_results"]
