"""Dynamic batching: pairs from concurrent requests are merged into device batches.

One worker thread owns the engine (one device, no concurrent forward passes). A batch is run as soon as it
holds ``max_batch`` pairs or its oldest pair has waited ``max_wait_s``. Pairs queue per client and a batch
takes them round-robin across clients, so a client that sends many or huge requests cannot starve the
others: each waiting client gets a share of every batch. A batch holds pairs of one caption length and one context
note (the engine takes one of each per call). Pairs carrying an idempotency key that is already queued, running or
recently finished are not computed again (a client resending a batch after a timeout).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..engine_api import Engine

log = logging.getLogger(__name__)


class PreparingEngine(Engine, Protocol):
    """An engine whose CPU preparation can run apart from its device work (CaptionEngine): the batcher prepares
    batch k+1 while batch k generates."""

    def prepare(self, pairs: Sequence[tuple[Any, Any]], first_index: int = 0, *, context: str | None = None) -> Any: ...

    def generate_prepared(self, batch: Any, max_new_tokens: int = 64) -> list[Any]: ...


def can_prepare(engine: Any) -> bool:
    return callable(getattr(engine, "prepare", None)) and callable(getattr(engine, "generate_prepared", None))


class Overloaded(Exception):
    """Too many pairs waiting; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class PairOutcome:
    """What a pair's future resolves to: the engine's result and its queue + compute time."""

    result: Any
    timing_ms: float
    batch_size: int


@dataclass
class _Item:
    pair: tuple[Any, Any]
    max_new_tokens: int
    client: str
    context: str | None = None
    future: Future = field(default_factory=Future)
    key: Hashable | None = None
    enqueued: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    def __init__(
        self,
        engine: Engine,
        max_batch: int = 8,
        max_wait_s: float = 0.01,
        max_pending: int = 1024,
        cache_size: int = 4096,
        on_batch: Callable[[int, float], None] | None = None,
        workers: int = 1,
        prefetch: int = 1,
    ):
        """`workers` threads take batches (one engine call each): 1 for one device; one per model replica when the
        engine fans out to several (Ray Serve), so that every replica has a batch in flight.

        With one worker and an engine that can prepare apart (:func:`can_prepare`), a preparing thread forms and
        prepares up to `prefetch` batches ahead while the worker generates (0 turns this off)."""
        if max_batch < 1 or max_pending < 1:
            raise ValueError("max_batch and max_pending must be >= 1")
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self._on_batch = on_batch
        self._cond = threading.Condition()
        self._queues: OrderedDict[str, deque[_Item]] = OrderedDict()  # round-robin order = dict order
        self._pending = 0
        self._inflight: dict[Hashable, Future] = {}
        self._done: OrderedDict[Hashable, Future] = OrderedDict()
        self._cache_size = cache_size
        self._running = False
        self.workers = max(1, int(workers))
        self._threads: list[threading.Thread] = []
        self._batch_seconds = 0.0  # moving estimate, for Retry-After
        if prefetch < 0:
            raise ValueError("prefetch must be >= 0")
        self.prefetch = prefetch if self.workers == 1 and can_prepare(engine) else 0
        # prepared batches waiting for the device: (items, prepared batch or the preparation's error); None = stop
        self._ready: queue.Queue[tuple[list[_Item], Any] | None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> DynamicBatcher:
        with self._cond:
            if self._running:
                return self
            self._running = True
        if self.prefetch:
            self._ready = queue.Queue(maxsize=self.prefetch)
            self._threads = [
                threading.Thread(target=self._prepare_loop, name="ccexpert-batcher-prepare", daemon=True),
                threading.Thread(target=self._generate_loop, name="ccexpert-batcher-0", daemon=True),
            ]
        else:
            self._threads = [
                threading.Thread(target=self._loop, name=f"ccexpert-batcher-{i}", daemon=True)
                for i in range(self.workers)
            ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch being run, fail whatever is still queued."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        with self._cond:
            while self._ready is not None and not self._ready.empty():  # prepared but never run
                entry = self._ready.get_nowait()
                for item in entry[0] if entry else []:
                    self._settle(item, exc=RuntimeError("service is shutting down"))
            for queue in self._queues.values():
                for item in queue:
                    self._settle(item, exc=RuntimeError("service is shutting down"))
            self._queues.clear()
            self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    # -- submitting -------------------------------------------------------------------------------------
    def submit(
        self,
        client: str,
        pairs: Sequence[tuple[Any, Any]],
        max_new_tokens: int = 64,
        keys: Sequence[Hashable | None] | None = None,
        context: str | None = None,
    ) -> list[Future]:
        """One future per pair (resolving to :class:`PairOutcome`), in order. All or nothing: raises
        :class:`Overloaded` without queueing anything when the pairs do not fit. `context` (the request's note) goes
        to the engine with the pairs; the keys must include it when another note may give another caption."""
        keys = list(keys) if keys is not None else [None] * len(pairs)
        if len(keys) != len(pairs):
            raise ValueError("keys and pairs differ in length")
        with self._cond:
            if not self._running:
                raise RuntimeError("batcher is not running")
            futures: list[Future | None] = [self._known(k) for k in keys]
            new = sum(f is None for f in futures)
            if self._pending + new > self.max_pending:
                retry = max(1.0, self._batch_seconds * (self._pending / self.max_batch + 1))
                raise Overloaded(f"{self._pending} pairs are waiting (limit {self.max_pending})", retry)
            queue = self._queues.setdefault(client, deque())
            for i, (pair, key) in enumerate(zip(pairs, keys, strict=True)):
                if futures[i] is not None:
                    continue
                item = _Item(pair=pair, max_new_tokens=max_new_tokens, client=client, context=context, key=key)
                if key is not None:
                    self._inflight[key] = item.future
                queue.append(item)
                futures[i] = item.future
            self._pending += new
            self._cond.notify_all()
        return futures  # type: ignore[return-value]

    def _known(self, key: Hashable | None) -> Future | None:
        if key is None:
            return None
        if key in self._inflight:
            return self._inflight[key]
        if key in self._done:
            self._done.move_to_end(key)
            return self._done[key]
        return None

    # -- the worker -------------------------------------------------------------------------------------
    def _next_batch(self) -> list[_Item]:
        with self._cond:
            while self._running and self._pending == 0:
                self._cond.wait()
            if not self._running:
                return []
            oldest = min(q[0].enqueued for q in self._queues.values() if q)
            deadline = oldest + self.max_wait_s
            while self._running and self._pending < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._take_round_robin()

    def _take_round_robin(self) -> list[_Item]:
        batch: list[_Item] = []
        group: tuple[int, str | None] | None = None  # one caption length and one note per engine call
        while len(batch) < self.max_batch:
            took = False
            for client in list(self._queues):
                queue = self._queues[client]
                if queue and (group is None or _group(queue[0]) == group):
                    item = queue.popleft()
                    group = _group(item)
                    batch.append(item)
                    took = True
                    self._queues.move_to_end(client)  # served: goes to the back of the rotation
                if not queue:
                    del self._queues[client]
                if len(batch) >= self.max_batch:
                    break
            if not took:
                break
        self._pending -= len(batch)
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                if not self._running:
                    return
                continue
            self._run(batch)

    def _prepare_loop(self) -> None:
        """Forms batches and prepares them (decode already done: copy + prompt rows) ahead of the device."""
        assert self._ready is not None
        try:
            while True:
                batch = self._next_batch()
                if not batch:
                    if not self._running:
                        return
                    continue
                try:
                    prepared: Any = self.engine.prepare(  # type: ignore[attr-defined]
                        [it.pair for it in batch], **_note(batch[0].context)
                    )
                except Exception as exc:  # a bad pair: the worker isolates it pair by pair
                    prepared = exc
                while True:  # bounded hand-off: blocks while `prefetch` batches already wait
                    try:
                        self._ready.put((batch, prepared), timeout=0.5)
                        break
                    except queue.Full:
                        if not self._running:
                            with self._cond:
                                for item in batch:
                                    self._settle(item, exc=RuntimeError("service is shutting down"))
                            return
        finally:
            self._ready.put(None)  # the worker may wait in get(); the queue has room once it drains

    def _generate_loop(self) -> None:
        assert self._ready is not None
        while True:
            entry = self._ready.get()
            if entry is None:
                return
            batch, prepared = entry
            if not self._running:  # stopping: finish nothing new
                with self._cond:
                    for item in batch:
                        self._settle(item, exc=RuntimeError("service is shutting down"))
                continue
            if isinstance(prepared, Exception):
                self._run_isolated(batch, prepared)
                continue
            self._run(batch, prepared)

    def _run_isolated(self, batch: list[_Item], exc: Exception) -> None:
        if len(batch) > 1:
            log.warning("batch of %d failed (%s); retrying pair by pair", len(batch), exc)
            for item in batch:
                self._run([item])
            return
        log.error("pair failed: %s", exc, exc_info=exc)
        with self._cond:
            self._settle(batch[0], exc=exc)

    def _run(self, batch: list[_Item], prepared: Any = None) -> None:
        start = time.monotonic()
        try:
            tokens = batch[0].max_new_tokens
            if prepared is None:
                results = self.engine.caption(
                    [it.pair for it in batch], max_new_tokens=tokens, **_note(batch[0].context)
                )
            else:
                results = self.engine.generate_prepared(prepared, max_new_tokens=tokens)  # type: ignore[attr-defined]
            if len(results) != len(batch):
                raise RuntimeError(f"engine returned {len(results)} results for {len(batch)} pairs")
        except Exception as exc:  # isolate the failing pair instead of failing the whole batch
            self._run_isolated(batch, exc)
            return
        elapsed = time.monotonic() - start
        self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * elapsed if self._batch_seconds else elapsed
        if self._on_batch is not None:
            self._on_batch(len(batch), elapsed)
        done = time.monotonic()
        with self._cond:
            for item, result in zip(batch, results, strict=True):
                self._settle(item, PairOutcome(result, (done - item.enqueued) * 1000.0, len(batch)))

    def _settle(self, item: _Item, outcome: PairOutcome | None = None, exc: BaseException | None = None) -> None:
        """Resolve a future and move its key from in-flight to the cache (errors are not cached). Holds the lock."""
        if item.key is not None:
            self._inflight.pop(item.key, None)
            if exc is None:
                self._done[item.key] = item.future
                while len(self._done) > self._cache_size:
                    self._done.popitem(last=False)
        if item.future.done():
            return
        if exc is not None:
            item.future.set_exception(exc)
        else:
            item.future.set_result(outcome)


def _group(item: _Item) -> tuple[int, str | None]:
    """What the pairs of one engine call share: caption length and context note."""
    return item.max_new_tokens, item.context


def _note(context: str | None) -> dict[str, str]:
    """The engine's ``context`` keyword, only when there is a note: engines (and test stubs) written before notes
    take calls without one unchanged."""
    return {} if context is None else {"context": context}
