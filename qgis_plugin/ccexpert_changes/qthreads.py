"""A ``concurrent.futures.Executor`` on QThreads, for the run loop's requests in flight inside QGIS.

QGIS networking starts QTimers for its requests, and in a Python thread Qt refuses some of them ("QObject::startTimer:
Timers can only be used with threads started with QThread", printed by every run with requests in flight before
this executor). In QThreads every timer works, as in the task thread the plugin used alone before. Workers that a
canceled run abandons keep running until their request ends; they stay referenced here until then, so no QThread is
destroyed while it runs.
"""

from __future__ import annotations

import queue

from qgis.PyQt.QtCore import QThread

from .core.prefetch import QueueExecutor, serve_jobs

_RUNNING: set[_Worker] = set()  # workers whose run() has not returned (abandoned ones included)


class _Worker(QThread):
    def __init__(self, jobs: queue.Queue):
        super().__init__()
        self.jobs = jobs

    def run(self) -> None:  # QThread API
        try:
            serve_jobs(self.jobs)
        finally:
            _RUNNING.discard(self)


class QThreadExecutor(QueueExecutor):
    """``workers`` QThreads taking jobs from one queue, in order."""

    def _start(self, index: int) -> _Worker:
        worker = _Worker(self._work)
        _RUNNING.add(worker)
        worker.start()
        return worker

    def _join(self, worker: _Worker) -> None:
        worker.wait()


def running_workers() -> int:
    """Workers still running (a canceled run's abandoned requests end on their own)."""
    return sum(1 for worker in list(_RUNNING) if worker.isRunning())
