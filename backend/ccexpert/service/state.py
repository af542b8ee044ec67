"""``ServiceState``: what the app holds (``app.state.service``): settings, engine, batcher, readiness, in-flight
counts and metrics, and the start-up sequence that makes it ready.

With ``engine=None`` the model is loaded in a background thread at startup (:meth:`ServiceState.bring_up`), so
``/healthz`` answers at once. ``/readyz`` turns 200 only once the model is loaded and has captioned a built-in sample
pair (``ccexpert.samples``) through the engine (:func:`check_captions`): a model that loads but cannot caption never
looks ready. When loading or that check fails, the reason is kept for ``/readyz`` (503) and ``on_failure`` is called
(``ccexpert serve`` then stops with a non-zero exit code).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ccexpert_changes.core.grid import DEFAULT_CHIP_SIZE

from ..engine_api import EngineInfo
from ..samples import sample_pair
from .batching import DynamicBatcher
from .limits import InflightLimiter
from .prometheus import Metrics
from .settings import Settings

log = logging.getLogger("ccexpert.service")


def check_captions(engine: Any, engine_info: Mapping[str, Any], max_new_tokens: int) -> None:
    """Caption the built-in sample pair with the default caption length; raise unless it gives one caption
    with words and a confidence in [0, 1]. (Also the readiness check of the Ray Serve model replicas.)"""
    size = int(engine_info.get("chip_size", DEFAULT_CHIP_SIZE))
    t0 = time.monotonic()
    results = engine.caption([sample_pair(size)], max_new_tokens=max_new_tokens)
    if len(results) != 1:
        raise RuntimeError(f"start-up check: 1 sample pair gave {len(results)} results")
    caption, confidence = getattr(results[0], "caption", None), getattr(results[0], "confidence", None)
    if not isinstance(caption, str) or not caption.strip():
        raise RuntimeError(f"start-up check: the sample pair got no caption ({caption!r})")
    if not isinstance(confidence, float) or not math.isfinite(confidence) or not 0.0 <= confidence <= 1.0:
        raise RuntimeError(f"start-up check: the sample pair got confidence {confidence!r}")
    log.info(
        "start-up check: sample pair captioned in %.2f s: %r (confidence %.3f)",
        time.monotonic() - t0,
        caption,
        confidence,
    )


class ServiceState:
    """What the routers and middlewares share (``request.app.state.service``)."""

    def __init__(self, settings: Settings, engine: Any | None, on_failure: Callable[[str], None] | None = None):
        self.settings = settings
        self.engine = engine
        self.on_failure = on_failure
        self.engine_info: EngineInfo | None = None
        self.batcher: DynamicBatcher | None = None
        self.ready = False
        self.load_error: str | None = None
        self.inflight = 0
        self.lock = threading.Lock()
        self.draining = False  # shutting down: new caption requests are answered 503 shutting_down
        self.stopping = asyncio.Event()  # the shutdown grace is ending: requests still waiting are answered 503
        self.loop: asyncio.AbstractEventLoop | None = None  # the app's loop (set at startup)
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
                    self.settings.model,
                    device=self.settings.device,
                    dtype=self.settings.dtype,
                    max_batch=self.settings.device_batch,
                )
            self.engine_info = EngineInfo.of(self.engine.info())
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
        """:func:`check_captions` on this state's engine (loaded, ``engine_info`` read)."""
        check_captions(self.engine, self.engine_info or {}, self.settings.max_new_tokens)

    def begin_shutdown(self, grace_s: float) -> None:
        """The server got SIGTERM/SIGINT: refuse new caption requests now, and answer the ones still waiting 503
        ``shutting_down`` (with Retry-After) just before ``grace_s`` ends, while the server still sends responses
        (uvicorn cancels what is left after its graceful timeout, with a plain-text 500). Safe from a signal handler
        or another thread."""
        self.draining = True
        self.ready = False
        self.metrics.ready.set(0)
        loop = self.loop
        if loop is not None and not loop.is_closed():
            answer_after = max(0.0, grace_s - min(1.0, grace_s / 2))
            loop.call_soon_threadsafe(loop.call_later, answer_after, self.stopping.set)

    def shut_down(self) -> None:
        self.ready = False
        if self.batcher is not None:
            self.batcher.stop()


__all__ = ["ServiceState", "check_captions"]
