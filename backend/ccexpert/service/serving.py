"""``CaptionServing``: the service's logic behind the routers (``app.state.serving``), as vLLM's ``OpenAIServing*``
classes are behind its entrypoints: what the API advertises (``info``, ``readiness``) and ``POST /v1/captions``
end to end, over a typed :class:`~.protocol.CaptionBatch` (the route reads the body with ``protocol``):

- admission (:meth:`CaptionServing.admit`, before the body is read): 503 while the model loads, after it failed or
  while the server shuts down, and the caller's per-key slot (429 before a byte of the body is read);
- :meth:`CaptionServing.create_captions` (transport-free): batch bounds and duplicate ids, the global in-flight slot,
  decoding, idempotency (each pair's key is (API key, pair id, digest of its two PNGs, max_new_tokens, context note):
  a resend of the same ids with the same chips and note, on any connection, is answered once from the batcher's
  cache; another note is captioned anew), batching (429 when the batcher is full; a device batch holds one caption
  length and one note), results awaited up to ``request_timeout_s`` or until the shutdown grace ends (503
  ``timeout`` / ``shutting_down``; pairs left running finish into the cache, so a resend gets them) and shaping
  (one result per id, in order, or one error for the request).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..prefetch import worker_pool
from .auth import Caller
from .batching import Overloaded
from .errors import ApiError
from .images import decode_pair
from .protocol import CaptionBatch, RawPairs, check_batch
from .state import ServiceState


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
        if service.draining:  # a load balancer stops sending here
            body = {"error": {"code": "shutting_down", "message": "the server is shutting down", "id": None}}
            return JSONResponse(body, status_code=503, headers=_RETRY_SOON)
        if service.ready:
            return {"status": "ready"}
        if service.load_error:  # it will not recover: no Retry-After
            body = {"error": {"code": "model_failed", "message": service.load_error, "id": None}}
            return JSONResponse(body, status_code=503)
        message = "model is loading or captioning its start-up sample"
        body = {"error": {"code": "not_ready", "message": message, "id": None}}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    # -- POST /v1/captions ---------------------------------------------------------------------------------------

    @asynccontextmanager
    async def admit(self, caller: Caller) -> AsyncIterator[None]:
        """Before the body is read: 503 unless ready (and not shutting down), then the caller's per-key slot (waited
        for up to ``key_slot_wait_s``, then 429), held until the request is answered."""
        self._check_open()
        async with self.state.limiter.key_slot(caller.fairness_id, _who(caller)):
            yield

    def _check_open(self) -> dict:
        service = self.state
        if service.draining:
            raise ApiError(503, "shutting_down", "the server is shutting down; retry later", headers=_RETRY_SOON)
        info = self.info()  # 503 model_failed / not_ready
        if not service.ready or service.batcher is None:
            raise ApiError(503, "not_ready", "model is loading", headers={"Retry-After": "5"})
        return info

    async def create_captions(self, batch: CaptionBatch, caller: Caller) -> dict:
        """The response body of ``POST /v1/captions`` (``CaptionResponse``) for ``batch``; errors raise
        :class:`ApiError`. Transport-free: the per-key slot is the caller's (``admit``)."""
        service = self.state
        info = self._check_open()
        batcher = service.batcher
        assert batcher is not None  # _check_open
        settings = service.settings
        ids = batch.ids
        check_batch(ids, settings.max_batch)
        with service.limiter.slot():
            # capped, not refused: clients (the plugin) send their default without knowing the server's setting
            tokens = min(batch.max_new_tokens or settings.max_new_tokens, settings.max_new_tokens)
            pairs = await run_in_threadpool(_decode_all, ids, batch.pairs, info["chip_size"])
            # idempotency key: a resend (any connection) of the same id with the same chips and note is answered once
            raw, note = batch.pairs, batch.context
            keys = [(caller.key, pair_id, digest(b, a), tokens, note) for pair_id, (b, a) in zip(ids, raw, strict=True)]
            try:
                futures = batcher.submit(caller.fairness_id, pairs, max_new_tokens=tokens, keys=keys, context=note)
            except Overloaded as exc:
                retry = str(math.ceil(exc.retry_after))
                raise ApiError(429, "overloaded", str(exc), headers={"Retry-After": retry}) from None
            waiting = [asyncio.wrap_future(f) for f in futures]
            pending = await self._wait(waiting, settings.request_timeout_s)
            if pending:
                for future in pending:
                    future.add_done_callback(_retrieve)
                if service.stopping.is_set():
                    raise ApiError(
                        503,
                        "shutting_down",
                        f"{len(pending)} of {len(ids)} pairs not captioned before the server shut down; resend the "
                        "same ids (another replica)",
                        headers=_RETRY_SOON,
                    )
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

    async def _wait(self, waiting: list[asyncio.Future], timeout: float) -> list[asyncio.Future]:
        """Wait for every result, up to ``timeout`` or until the shutdown grace ends (``state.stopping``); the
        results not in yet. Nothing is cancelled: pairs left running finish into the cache."""
        everything = asyncio.ensure_future(asyncio.wait(waiting))
        stopping = asyncio.ensure_future(self.state.stopping.wait())
        try:
            await asyncio.wait({everything, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (everything, stopping):
                task.cancel()  # the waits only, not the results
        return [f for f in waiting if not f.done()]


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
    """PNG decoding in the shared worker pool (libpng through imagecodecs, GIL released): a big request uses every
    core; the first bad pair's error is raised, as before."""
    decoded = worker_pool().map(decode_pair, *zip(*raw_pairs, strict=True), ids, [chip_size] * len(ids))
    return list(decoded)


__all__ = ["CaptionServing", "digest", "shape_results"]

_RETRY_SOON = {"Retry-After": "5"}


def _who(caller: Caller) -> str:
    return f"key {caller.key!r}" if caller.key else f"connection {caller.peer}"
