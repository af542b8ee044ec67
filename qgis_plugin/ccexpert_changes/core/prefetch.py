"""Read and encode the next chips while the current batch is at the backend.

One producer thread runs the chip generator a bounded number of items ahead (memory stays flat); the task's
thread sends batches and writes the GeoPackage. The GDAL datasets are read only by the producer thread while
it runs, so no dataset is used by two threads at once. GDAL reads and zlib release the GIL, so the overlap
is real even in Python.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

_END = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetcher:
    """Iterate over ``produce()`` computed ``depth`` items ahead in a background thread; the producer's
    exception is re-raised in the consumer. Always ``close()`` (or use as a context manager)."""

    def __init__(self, produce: Callable[[], Iterator[Any]], depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce,), name="ccexpert-chips", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, produce) -> None:
        try:
            for item in produce():
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(_Failure(exc))
            return
        self._put(_END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        """Stop the producer and wait for it, so the datasets are free for the caller again."""
        self._stop.set()
        self._thread.join(timeout=60)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve_jobs(jobs: queue.Queue) -> None:
    """A worker's loop: run ``(future, fn, args, kwargs)`` jobs from ``jobs`` in order until a ``None`` arrives."""
    while True:
        job = jobs.get()
        if job is None:
            return
        future, fn, args, kwargs = job
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the future's owner
            future.set_exception(exc)


class QueueExecutor(Executor):
    """Workers taking jobs from one queue, in order: what the daemon-thread executor here and the plugin's QThread
    executor share; a subclass says how a worker starts (``_start``) and how it is waited for (``_join``)."""

    def __init__(self, workers: int):
        self._work: queue.Queue = queue.Queue()
        self._threads = [self._start(i) for i in range(max(1, workers))]

    def _start(self, index: int) -> Any:
        raise NotImplementedError

    def _join(self, worker: Any) -> None:
        raise NotImplementedError

    def submit(self, fn, /, *args, **kwargs) -> Future:  # type: ignore[override]
        future: Future = Future()
        self._work.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            while True:
                try:
                    job = self._work.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        for _ in self._threads:
            self._work.put(None)
        if wait:
            for worker in self._threads:
                self._join(worker)


class DaemonThreadExecutor(QueueExecutor):
    """``ThreadPoolExecutor`` without the join at interpreter exit: a canceled run abandons requests stalled at a
    backend, and the process must be able to end at once (a pool's threads are joined at exit, so a stalled request
    kept ``ccexpert describe`` alive a minute after Ctrl-C). Work runs in ``workers`` daemon threads."""

    def __init__(self, workers: int, name: str = "ccexpert-worker"):
        self._name = name
        super().__init__(workers)

    def _start(self, index: int) -> threading.Thread:
        thread = threading.Thread(target=serve_jobs, args=(self._work,), name=f"{self._name}-{index}", daemon=True)
        thread.start()
        return thread

    def _join(self, worker: threading.Thread) -> None:
        worker.join()
