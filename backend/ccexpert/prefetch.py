"""Bounded prefetch and the CPU worker pool that feeds a device: batch k+1 is prepared while batch k generates.

PNG inflate, PIL resizes and numpy copies release the GIL, so a few threads run them in parallel beside the thread
that drives `generate`. The pool is sized from the cores (``CCEXPERT_PREP_WORKERS`` overrides it) and shared by the
process; prefetch keeps at most `depth` prepared batches waiting, so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS_ENV = "CCEXPERT_PREP_WORKERS"
MAX_DEFAULT_WORKERS = 8  # past this, more threads only contend for the GIL between their C calls
DEFAULT_DEPTH = 2

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def default_workers() -> int:
    """Worker threads for decoding and preparing: ``CCEXPERT_PREP_WORKERS`` if set, else the usable cores (max 8)."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if text:
        try:
            workers = int(text)
        except ValueError:
            raise ValueError(f"{WORKERS_ENV} must be a positive integer, got {text!r}") from None
        if workers < 1:
            raise ValueError(f"{WORKERS_ENV} must be a positive integer, got {text!r}")
        return workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


def worker_pool() -> ThreadPoolExecutor:
    """The process's shared preparation pool (created on first use, sized by :func:`default_workers`)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=default_workers(), thread_name_prefix="ccexpert-prep")
        return _pool


def prefetched(items: Iterable[T], prepare: Callable[[T], R], depth: int = DEFAULT_DEPTH) -> Iterator[R]:
    """`prepare(item)` for each item, in order, computed up to `depth` items ahead in one background thread.

    An exception from `prepare` is raised when its item's turn comes (the earlier results are yielded first).
    Closing the iterator early cancels what has not started and waits for what has, so nothing runs on after it.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    source = iter(items)
    ahead: deque[Future[R]] = deque()
    # its own thread, not the shared pool: prepare() itself fans out to the pool, and waiting on the pool from a
    # pool thread could deadlock when every worker is waiting
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ccexpert-prefetch") as runner:
        try:
            for item in source:
                ahead.append(runner.submit(prepare, item))
                if len(ahead) > depth:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()
        finally:
            for future in ahead:
                future.cancel()


__all__ = ["DEFAULT_DEPTH", "WORKERS_ENV", "default_workers", "prefetched", "worker_pool"]
