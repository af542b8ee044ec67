"""A ``concurrent.futures.Executor`` on QThreads, for the run loop's requests in flight inside QGIS.

QGIS networking starts QTimers for its requests, and in a Python thread Qt refuses some of them ("QObject::startTimer:
Timers can only be used with threads started with QThread", printed by every run with requests in flight before
this executor). In QThreads every timer works, as in the task thread the plugin used alone before. Workers that a
canceled run abandons keep running until their request ends; they stay referenced here until then, so no QThread is
destroyed while it runs.
"""

from __future__ import annotations

import queue
from concurrent.futures import Executor, Future

from qgis.PyQt.QtCore import QThread

_RUNNING: set[_Worker] = set()  # workers whose run() has not returned (abandoned ones included)


class _Worker(QThread):
    def __init__(self, jobs: queue.Queue):
        super().__init__()
        self.jobs = jobs

    def run(self) -> None:  # QThread API
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                future, fn, args, kwargs = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # handed to whoever waits on the future
                    future.set_exception(exc)
        finally:
            _RUNNING.discard(self)


class QThreadExecutor(Executor):
    """``workers`` QThreads taking jobs from one queue, in order."""

    def __init__(self, workers: int):
        self._jobs: queue.Queue = queue.Queue()
        self._workers = [_Worker(self._jobs) for _ in range(max(1, workers))]
        for worker in self._workers:
            _RUNNING.add(worker)
            worker.start()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        self._jobs.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        for _ in self._workers:
            self._jobs.put(None)
        if wait:
            for worker in self._workers:
                worker.wait()


def running_workers() -> int:
    """Workers still running (a canceled run's abandoned requests end on their own)."""
    return sum(1 for worker in list(_RUNNING) if worker.isRunning())
