"""The Ray Serve deployments of the service (``ccexpert.ray_serve`` builds and launches them):

- ``CaptionModel`` (``replicas`` fixed, or autoscaled on ongoing requests): one engine per replica (``num_gpus=1``
  when the device is a GPU). The constructor loads the model and captions the built-in sample pair with the
  service's own start-up check (``ccexpert.service.state.check_captions``); a replica that cannot caption raises
  there and is never routed to. ``@serve.batch`` merges the pair calls a replica gets into engine batches of up to
  ``device_batch``, one engine call per caption length and context note (:func:`caption_grouped`), each result back
  to its own call.
- ``CCExpertAPI`` (the ingress, one replica): :class:`IngressService`, our FastAPI app built by
  ``ccexpert.service.create_app`` in the replica (routes, API keys, limits, the error envelope, ``/openapi.json``,
  ``/docs`` and ``/metrics`` are the same code as ``ccexpert serve``), whose engine is a :class:`ReplicaEngine`: the
  engine interface (``caption``, ``info``) in front of the model deployment's handle. The service's dynamic batcher
  (round-robin across keys, idempotency cache, 429 on overload) forms the batches; the ingress runs one batcher
  worker per model replica, and by default (``batching="serve"``) sends each pair as its own call so that a batch
  is spread over every idle replica.

A replica that dies with a batch in flight: :class:`ReplicaEngine` resends the batch (captioning is idempotent) to
another replica, or to the replacement, within ``retry_budget_s``; past it the pairs fail and the request is answered
503 ``unavailable`` with ``Retry-After``, which clients retry. Never a wrong or missing result: a batch's results come
back whole, from one engine call, or not at all.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

try:
    from ray import serve
    from ray.exceptions import RayActorError, RayTaskError
except ImportError as exc:  # pragma: no cover - the [ray] extra
    raise ImportError("ccexpert.ray_deployments needs Ray Serve: pip install -e '.[ray]'") from exc

try:  # a replica that is starting, restarting or unreachable; older Rays have only RayActorError
    from ray.exceptions import ActorUnavailableError

    _REPLICA_LOST: tuple[type[Exception], ...] = (RayActorError, ActorUnavailableError)
except ImportError:  # pragma: no cover
    _REPLICA_LOST = (RayActorError,)

from .engine_api import EngineInfo
from .service import create_app
from .service.auth import KeyStore
from .service.settings import Settings
from .service.state import check_captions

log = logging.getLogger("ccexpert.ray_serve")

APP_NAME = "ccexpert"
MODEL_DEPLOYMENT = "CaptionModel"
INGRESS_DEPLOYMENT = "CCExpertAPI"
BATCHING_MODES = ("ingress", "serve")
DEFAULT_RETRY_BUDGET_S = 60.0


class ReplicasUnavailable(RuntimeError):
    """No model replica answered within the retry budget (all dead, restarting or hung)."""

    retry_after = 5.0


def caption_grouped(items: Sequence[tuple[Any, ...]], run: Callable[..., Sequence]) -> list:
    """Results for ``items`` ((pair, max_new_tokens, context) calls merged by ``@serve.batch``; the context may be
    left out), in their order: one ``run(pairs, max_new_tokens, context)`` per distinct (length, note), in the order
    they first appear, each result put back at its own call (issue 30: requests of different lengths in one batch;
    issue 27: of different context notes)."""
    groups: dict[tuple, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(tuple(item[1:]), []).append(index)
    out: list = [None] * len(items)
    for group, indices in groups.items():
        results = list(run([items[i][0] for i in indices], *group))
        if len(results) != len(indices):
            raise RuntimeError(f"engine returned {len(results)} results for {len(indices)} pairs")
        for i, result in zip(indices, results, strict=True):
            out[i] = result
    return out


# -- the model replica -------------------------------------------------------------------------------------------------


def _load_engine(
    model: str | None,
    device: str,
    dtype: str,
    device_batch: int,
    engine_factory: str | None,
    engine_kwargs: Mapping[str, Any] | None,
):
    if engine_factory:  # "package.module:callable": a stand-in engine (tests, benchmarks) or a custom one
        module_name, _, attr = engine_factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        return factory(**dict(engine_kwargs or {}))
    from .engine import CaptionEngine

    return CaptionEngine.from_pretrained(model, device=device, dtype=dtype, max_batch=device_batch)


@serve.deployment(
    name=MODEL_DEPLOYMENT,
    max_ongoing_requests=1,  # options() per batching mode
    health_check_period_s=10,
    health_check_timeout_s=30,
    graceful_shutdown_timeout_s=30,
)
class CaptionModel:
    """One engine per replica. Ready only once the sample pair is captioned (else the constructor raises)."""

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        device_batch: int = 8,
        max_new_tokens: int = 64,
        max_wait_ms: float = 10.0,
        engine_factory: str | None = None,
        engine_kwargs: Mapping[str, Any] | None = None,
    ):
        self.engine = _load_engine(model, device, dtype, device_batch, engine_factory, engine_kwargs)
        self._info = dict(self.engine.info())
        # readiness = the warm-up caption, with the very check `ccexpert serve` runs before it reports ready
        check_captions(self.engine, self._info, max_new_tokens)
        self._lock = threading.Lock()  # one forward pass at a time on this replica's device
        self.batches: list[int] = []  # pairs per engine call
        self.merged: list[int] = []  # calls per @serve.batch
        # @serve.batch adds these setters to the method at run time; Ray's stub types it as a plain callable
        self._batched.set_max_batch_size(device_batch)  # type: ignore[attr-defined]
        self._batched.set_batch_wait_timeout_s(max_wait_ms / 1000.0)  # type: ignore[attr-defined]
        log.info("replica %d ready: %s", os.getpid(), self._info)

    def _run(self, pairs: list, max_new_tokens: int, context: str | None = None) -> list:
        note = {} if context is None else {"context": context}  # engines written before notes take none
        with self._lock:
            results = list(self.engine.caption(pairs, max_new_tokens=max_new_tokens, **note))
            self.batches.append(len(pairs))
        if len(results) != len(pairs):
            raise RuntimeError(f"engine returned {len(results)} results for {len(pairs)} pairs")
        return results

    async def caption(self, pairs: list, max_new_tokens: int = 64, context: str | None = None) -> list:
        """A whole batch (``batching="ingress"``: the service's batcher already merged clients)."""
        return await asyncio.to_thread(self._run, list(pairs), max_new_tokens, context)

    async def caption_one(self, pair: tuple, max_new_tokens: int = 64, context: str | None = None):
        """One pair (``batching="serve"``): ``@serve.batch`` merges concurrent calls into one engine batch."""
        return await self._batched((pair, max_new_tokens, context))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _batched(self, items: list[tuple[tuple, int, str | None]]) -> list:
        self.merged.append(len(items))
        return await asyncio.to_thread(caption_grouped, items, self._run)

    def info(self) -> dict:
        return dict(self._info)

    def pid(self) -> int:
        return os.getpid()

    def batch_sizes(self) -> list[int]:
        return list(self.batches)

    def merged_sizes(self) -> list[int]:
        """Calls merged by each ``@serve.batch`` (tests: two caption lengths in one batch)."""
        return list(self.merged)

    def check_health(self) -> None:
        if getattr(self, "engine", None) is None:
            raise RuntimeError("no engine")


# -- the ingress's engine: a proxy to the model replicas ------------------------------------------------------------


class ReplicaEngine:
    """The engine interface in front of ``CaptionModel``'s handle. Called from the service's batcher threads (never
    from an event loop). A batch whose replica died is resent, to whichever replica Serve routes it, until
    ``retry_budget_s``; a replica's own error (a pair the model cannot caption) is raised as the engine's error."""

    def __init__(
        self,
        handle,
        batching: str = "serve",
        retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
        call_timeout_s: float = 240.0,
    ):
        if batching not in BATCHING_MODES:
            raise ValueError(f"batching must be one of {BATCHING_MODES}, got {batching!r}")
        self.handle = handle
        self.batching = batching
        self.retry_budget_s = retry_budget_s
        self.call_timeout_s = call_timeout_s
        self.resent = 0  # batches resent after a replica died (tests, logs)
        self.parallelism = 1  # batches worth running at once (one per replica); read by the service when it can
        self._info: EngineInfo | None = None
        self._down_until = 0.0

    def info(self) -> EngineInfo:
        """The replicas' engine info (a plain dict on its way between processes), typed."""
        if self._info is None:
            self._info = EngineInfo.of(self._call(lambda: [self.handle.info.remote()])[0])
        return self._info

    def caption(
        self, pairs: Sequence[tuple[Any, Any]], max_new_tokens: int = 64, *, context: str | None = None
    ) -> list:
        pairs = list(pairs)
        if self.batching == "ingress":
            return self._call(lambda: [self.handle.caption.remote(pairs, max_new_tokens, context)])[0]
        return self._call(lambda: [self.handle.caption_one.remote(p, max_new_tokens, context) for p in pairs])

    def _call(self, send) -> list:
        if time.monotonic() < self._down_until:  # the budget was just spent: fail fast instead of per pair again
            raise ReplicasUnavailable("no caption replica is available; retry later")
        deadline = time.monotonic() + self.retry_budget_s
        attempt = 0
        while True:
            try:
                responses = send()
                return [r.result(timeout_s=self.call_timeout_s) for r in responses]
            except RayTaskError as exc:  # the replica ran and raised: the engine's own error, not a dead replica
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, Exception) else RuntimeError("caption replica failed")) from None
            except _REPLICA_LOST as exc:
                attempt += 1
                delay = min(2.0, 0.1 * 2**attempt) * random.uniform(0.5, 1.0)
                if time.monotonic() + delay > deadline:
                    self._down_until = time.monotonic() + 5.0
                    log.error("no caption replica answered within %.0f s (%s)", self.retry_budget_s, type(exc).__name__)
                    raise ReplicasUnavailable("no caption replica is available; retry later") from None
                self.resent += 1
                log.warning("caption replica lost (%s); resending the batch in %.2f s", type(exc).__name__, delay)
                time.sleep(delay)
            except TimeoutError:
                raise ReplicasUnavailable(f"caption replica did not answer within {self.call_timeout_s:g} s") from None


# -- the ingress -------------------------------------------------------------------------------------------------------


class IngressService:
    """The ingress's replica (``CCExpertAPI``): ``create_app(settings, ReplicaEngine(handle))``, the service
    unchanged, in front of the model replicas.

    The API keys file is read where the application is built (the head node) and handed over as text, parsed in
    memory: workers need no copy of it and no key file is left anywhere (issue 24)."""

    def __init__(
        self,
        model_handle,
        settings: dict,
        keys_text: str | None = None,
        workers: int = 1,
        batching: str = "serve",
        retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
    ):
        self.settings = Settings(**{**dict(settings), "api_keys_file": None})
        keys = KeyStore.from_text(keys_text, "API keys") if keys_text is not None else None
        self.failure: str | None = None
        self.engine = ReplicaEngine(
            model_handle,
            batching,
            retry_budget_s=min(retry_budget_s, self.settings.request_timeout_s),
            call_timeout_s=self.settings.request_timeout_s,
        )
        self.engine.parallelism = workers
        self.service_app = create_app(self.settings, self.engine, on_failure=self._failed, keys=keys)

    def __serve_build_asgi_app__(self):
        return self.service_app

    def _failed(self, reason: str) -> None:
        self.failure = reason

    def check_health(self) -> None:
        if self.failure is not None:  # the start-up check failed through the replicas: let Serve restart us
            raise RuntimeError(self.failure)

    def resent_batches(self) -> int:
        return self.engine.resent


CCExpertAPI = serve.deployment(name=INGRESS_DEPLOYMENT, max_ongoing_requests=256, health_check_period_s=10)(
    serve.ingress()(IngressService)
)
