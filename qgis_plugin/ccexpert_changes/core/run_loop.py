"""The one chip loop behind the QGIS plugin and ``ccexpert describe`` (Qt-free, stdlib only).

chips (grid order) -> prepared items (read, nodata check, encode; in a prefetch thread) -> batches (by pair count
and request bytes) -> captioner (up to ``in_flight`` requests at once) -> records -> writer, batch by batch
**in grid order**, so every tile is written exactly once, the output's rows follow the grid, and a run that
stops keeps a clean prefix that a resume continues.

What the loop does for every caller, so no caller does it differently:
- tiles already in the writer (resume) are counted and never read or sent;
- a batch the backend refuses as a whole is retried pair by pair, so one bad chip fails alone;
- a request slower than a third of its timeout halves the batch size for the requests after it;
- nodata and unreadable chips ride in the next batch's transaction (at most ``hold_rows`` wait);
- a fatal error (backend gone, model broken) marks the batch's tiles as errors, lets the requests already in
  flight finish and be written, then stops with :class:`RunAborted`; a refused API key writes none of the
  unanswered tiles; a cancel writes the answers that arrive within ``cancel_grace_s`` (0: none) and abandons the
  requests still out (they run in daemon threads: nothing waits for them, not even the interpreter's exit);
- progress after each written batch: chips done of total, pairs per second and time left over the last minute;
  during an outage the client's retry state instead (:meth:`RunLoop.waiting`).

The callers bring three small adapters: ``prepare(chip) -> Item`` (their raster reader), a :class:`Captioner`
(their HTTP client or the in-process engine) and a :class:`Writer` (their GeoPackage writer).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any, Protocol

from .fields import STATUS_ERROR, STATUS_OK, STATUS_SKIPPED_NODATA, make_record, utc_now_iso
from .grid import Bounds, Chip
from .prefetch import DaemonThreadExecutor, Prefetcher
from .retry import Waiting, duration_text, waiting_text

SEND = "send"  # Item.status of a chip that goes to the captioner
HOLD_ROWS = 512  # rows without a request (nodata, unreadable) held back for the next transaction at most
POLL_S = 0.1  # how often a wait for an answer looks at the cancel flag


@dataclass
class Item:
    """One chip, prepared: ``status`` is SEND (``payload`` goes to the captioner, ``size`` bytes on the wire),
    ``skipped_nodata`` or ``error`` (with ``error``)."""

    chip: Chip
    status: str
    payload: Any = None
    size: int = 0
    nodata_before: float | None = None
    nodata_after: float | None = None
    error: str | None = None


class CaptionError(Exception):
    """A request failed. ``kind``: ``rejected`` (the backend refused this batch or pair: retried pair by pair, a
    lone pair becomes an error tile), ``fatal`` (stop the run; the batch's tiles keep the message),
    ``refused_key`` (stop; nothing of the batch is written) or ``canceled`` (the user stopped the run)."""

    def __init__(self, message: str, kind: str = "fatal"):
        super().__init__(message)
        self.kind = kind


class RunAborted(Exception):
    """The run stopped early; everything written before stays (resume continues). ``kind`` as in CaptionError,
    or ``write`` when the output could not be written."""

    def __init__(self, message: str, kind: str, stats: RunStats):
        super().__init__(message)
        self.kind = kind
        self.stats = stats


class Captioner(Protocol):
    def caption(self, items: Sequence[Item]) -> list[dict | Exception]:
        """One result per item, in order: ``{"caption", "confidence", "changed"[, "model"]}`` or the exception
        that failed this pair alone. Raises :class:`CaptionError` when the whole request failed."""
        ...

    def slow_after_s(self, pairs: int) -> float | None:
        """Seconds after which a request of ``pairs`` pairs counts as slow (None: never)."""
        ...


class Writer(Protocol):
    done: set[str]  # tile ids already captioned (resume)

    def write(self, rows: Sequence[tuple[dict, Bounds]]) -> int:
        """Append the rows in one transaction."""
        ...


class OutputWriter(Writer, Protocol):
    """What ``core.driver.drive`` writes into: ``core.output_contract.OutputContract``, once for both front ends
    (``output.TileWriter`` over a GDAL store, ``ccexpert.gpkg_output.TileWriter`` over a fiona store, both checked
    against ``core.output_contract.OutputStore``). This is what a run uses of it."""

    replaces: bool  # a fresh run that will replace an existing output once it captions its first tile

    def finish(self, keep: bool) -> bool:
        """End the run: a staged output replaces the old one when ``keep``; returns whether it holds this run."""
        ...

    def discard(self) -> None:
        """Drop a staged output (a refused key): the old one stays as it was."""
        ...


@dataclass
class RunSettings:
    batch_size: int = 8
    max_request_bytes: int = 0  # 0: no byte limit
    in_flight: int = 1  # requests at the backend at once; 1 = one after the other, in this thread
    hold_rows: int = HOLD_ROWS
    common: dict[str, Any] = field(default_factory=dict)  # fields of every record: model, backend, run_id
    cancel_grace_s: float = 0.0  # after a cancel, answers arriving within this time are still written


RATE_WINDOW_S = 60.0  # the pace shown is the last minute's, so it recovers after an outage


def _now() -> float:
    """The loop's clock, looked up at each call (so one replaced module clock drives stats and loop alike)."""
    return time.monotonic()


@dataclass
class RunStats:
    total: int = 0
    resumed: int = 0
    captioned: int = 0
    changed: int = 0
    errors: int = 0
    skipped_nodata: int = 0
    first_error: str | None = None
    started: float = -1.0  # on ``clock``; set at creation
    waiting: Waiting | None = None  # a request waits for the backend (an outage); cleared by the next written batch
    clock: Callable[[], float] = field(default=_now, repr=False, compare=False)
    _recent: collections.deque = field(default_factory=collections.deque, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    @property
    def written(self) -> int:
        return self.captioned + self.errors + self.skipped_nodata

    @property
    def done(self) -> int:
        return self.resumed + self.written

    @property
    def not_attempted(self) -> int:
        return max(0, self.total - self.done)

    def record(self, pairs: int, rows: int) -> None:
        """A batch was written: ``pairs`` answered by the captioner, ``rows`` written in all."""
        now = self.clock()
        self._recent.append((now, pairs, rows))
        while self._recent and self._recent[0][0] <= now - RATE_WINDOW_S:
            self._recent.popleft()
        self.waiting = None

    def _window(self) -> tuple[float, int, int]:
        now = self.clock()
        span = min(RATE_WINDOW_S, now - self.started)
        recent = [(pairs, rows) for t, pairs, rows in self._recent if t > now - RATE_WINDOW_S]
        return span, sum(p for p, _ in recent), sum(r for _, r in recent)

    def rate(self) -> float:
        """Chip pairs answered per second over the last minute (the whole run when shorter)."""
        span, pairs, _ = self._window()
        return pairs / span if span > 0 else 0.0

    def eta_s(self) -> float | None:
        """Seconds left at the last minute's pace (None before the first answer, or when nothing was written in the
        last minute: an outage has no pace)."""
        span, _, rows = self._window()
        if rows == 0 or span <= 0:
            return None
        return self.not_attempted * span / rows

    def note_error(self, message: str) -> None:
        if self.first_error is None:
            self.first_error = message


def progress_text(stats: RunStats) -> str:
    """``"120/400 chips · 3.4 pairs/s · 1 min 22 s left"``: what both front ends show after each batch; during an
    outage ``"24/121 chips · waiting for the backend: attempt 7, next try in 28 s, giving up in 4 min 41 s"``."""
    text = f"{stats.done}/{stats.total} chips"
    if stats.waiting is not None:
        return f"{text} · {waiting_text(stats.waiting)}"
    rate = stats.rate()
    if rate > 0:
        text += f" · {rate:.1f} pairs/s"
    eta = stats.eta_s()
    if eta is not None and stats.not_attempted:
        text += f" · {duration_text(eta)} left"
    return text


def _thread_pool(workers: int) -> Executor:
    return DaemonThreadExecutor(workers, name="ccexpert-request")


class _Answer:
    """A finished request: its outcomes, or the exception that failed it (``result()`` re-raises)."""

    def __init__(self, outcomes: list | None = None, error: BaseException | None = None, seconds: float = 0.0):
        self.outcomes, self.error, self.seconds = outcomes, error, seconds

    def result(self):
        if self.error is not None:
            raise self.error
        return self


@dataclass
class _Batch:
    items: list[Item] = field(default_factory=list)  # in grid order, SEND and rows without request
    sending: list[Item] = field(default_factory=list)
    bytes: int = 0
    answer: Future | _Answer | None = None


class RunLoop:
    """``RunLoop(prepare, captioner, writer, settings).run(chips, total)`` -> :class:`RunStats`; see the module
    docstring. ``on_progress(stats)`` after every written batch, ``on_tile_error(tile_id, message)`` for each
    failed tile, ``on_notice(text)`` for changes of plan (a smaller batch); ``is_canceled()`` is polled;
    ``executor(n)`` makes the n workers of the requests in flight (a ``concurrent.futures.Executor``)."""

    def __init__(
        self,
        prepare: Callable[[Chip], Item],
        captioner: Captioner,
        writer: Writer,
        settings: RunSettings,
        *,
        on_progress: Callable[[RunStats], None] | None = None,
        on_tile_error: Callable[[str, str], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        is_canceled: Callable[[], bool] | None = None,
        prefetch: int | None = None,
        executor: Callable[[int], Executor] | None = None,
    ):
        self.prepare, self.captioner, self.writer, self.settings = prepare, captioner, writer, settings
        self.batch_size = max(1, settings.batch_size)
        self.in_flight = max(1, settings.in_flight)
        self.on_progress = on_progress or (lambda stats: None)
        self.on_tile_error = on_tile_error or (lambda tile_id, message: None)
        self.on_notice = on_notice or (lambda text: None)
        self.is_canceled = is_canceled or (lambda: False)
        self.prefetch = prefetch or 2 * self.batch_size * self.in_flight
        # where requests in flight run: Python threads by default; the plugin passes QThreads, whose timers (the
        # request timeouts of QGIS networking) only work in threads Qt started
        self.executor = executor or _thread_pool
        self.stats = RunStats()
        self._queue: collections.deque[_Batch] = collections.deque()
        self._abort: RunAborted | None = None
        self._cancel_deadline: float | None = None  # set at the first cancel seen: now + cancel_grace_s
        self._abandoned = False  # a canceled run stopped waiting: nothing after it is written

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self, chips: Iterable[Chip], total: int) -> RunStats:
        self.stats = RunStats(total=total)
        done = frozenset(self.writer.done)
        pool = self.executor(self.in_flight) if self.in_flight > 1 else None
        try:
            with Prefetcher(lambda: self._items(chips, done), depth=self.prefetch) as items:
                batch = _Batch()
                for item in items:
                    if item is None:  # resumed
                        self.stats.resumed += 1
                        continue
                    if self._abort or self.is_canceled():
                        break
                    if item.status == SEND and batch.sending and self._too_big(batch, item):
                        batch = self._submit(batch, pool)
                    batch.items.append(item)
                    if item.status == SEND:
                        batch.sending.append(item)
                        batch.bytes += item.size
                    if (
                        len(batch.sending) >= self.batch_size
                        or len(batch.items) - len(batch.sending) >= self.settings.hold_rows
                    ):
                        batch = self._submit(batch, pool)
                if batch.items and not self._abort and not self.is_canceled():
                    self._submit(batch, pool)
                elif batch.items:  # rows without request cost nothing to keep
                    batch.items = [i for i in batch.items if i.status != SEND]
                    batch.sending = []
                    self._queue.append(batch)
                while self._queue and self._write_oldest():
                    pass  # canceled: what is answered within the grace is kept (in grid order), the rest abandoned
        finally:
            if pool is not None:
                # a cancel abandons the requests still out (their answers are dropped; a resume sends them again)
                pool.shutdown(wait=not self.is_canceled(), cancel_futures=True)
        if self._abort:
            raise self._abort
        if self.is_canceled():
            raise RunAborted("canceled", "canceled", self.stats)
        self.on_progress(self.stats)
        return self.stats

    def _items(self, chips: Iterable[Chip], done: frozenset[str]):
        """Runs in the prefetch thread: resumed tiles (None) are never read."""
        for chip in chips:
            if chip.tile_id in done:
                yield None
                continue
            if self.is_canceled() or self._abort:
                return
            yield self.prepare(chip)

    def _too_big(self, batch: _Batch, item: Item) -> bool:
        limit = self.settings.max_request_bytes
        return bool(limit) and batch.bytes + item.size > limit

    def _submit(self, batch: _Batch, pool: Executor | None) -> _Batch:
        if batch.sending:
            if pool is None:
                batch.answer = self._request(batch.sending)
            else:
                batch.answer = pool.submit(self._request, batch.sending)
        self._queue.append(batch)
        while sum(1 for b in self._queue if b.answer is not None) >= self.in_flight or (
            self._queue and self._ready(self._queue[0])
        ):
            if not self._write_oldest():
                break
        return _Batch()

    @staticmethod
    def _ready(batch: _Batch) -> bool:
        return batch.answer is None or isinstance(batch.answer, _Answer) or batch.answer.done()

    # -- one request (in a worker thread when in_flight > 1) ------------------------------------------------
    def _request(self, items: list[Item]) -> _Answer:
        start = time.monotonic()
        try:
            outcomes = self._caption(items)
        except BaseException as exc:  # re-raised in order by _write_oldest (Ctrl-C included)
            return _Answer(error=exc, seconds=time.monotonic() - start)
        return _Answer(outcomes, seconds=time.monotonic() - start)

    def _caption(self, items: list[Item]) -> list[dict | Exception]:
        try:
            outcomes = self.captioner.caption(items)
        except CaptionError as exc:
            if exc.kind != "rejected":
                raise
            if len(items) == 1:
                return [exc]
            return [outcome for item in items for outcome in self._caption([item])]
        if len(outcomes) != len(items):
            raise CaptionError(f"the backend answered {len(outcomes)} results for {len(items)} pairs")
        return outcomes

    # -- writing, in grid order ----------------------------------------------------------------------------
    def _wait(self, batch: _Batch) -> bool:
        """Wait for the batch's answer; False when the run was canceled and it did not come within the grace. The
        wait wakes every ``POLL_S`` to see a cancel (a stalled backend must not hold the run)."""
        answer = batch.answer
        while isinstance(answer, Future) and not answer.done():
            timeout = POLL_S
            if self.is_canceled():
                if self._cancel_deadline is None:
                    self._cancel_deadline = time.monotonic() + max(0.0, self.settings.cancel_grace_s)
                timeout = min(timeout, self._cancel_deadline - time.monotonic())
                if timeout <= 0:
                    return False
            wait_futures([answer], timeout=timeout)
        return True

    def _write_oldest(self) -> bool:
        """Write the oldest batch once answered; False (nothing written, nothing more will be) when a canceled run
        gave up waiting for it."""
        if self._abandoned or not self._wait(self._queue[0]):
            self._abandoned = True
            return False
        batch = self._queue.popleft()
        outcomes: list[dict | Exception] = []
        if batch.answer is not None:
            answer = batch.answer.result() if isinstance(batch.answer, Future) else batch.answer
            try:
                outcomes = answer.result().outcomes
            except CaptionError as exc:
                outcomes = self._failed(batch, exc)
            else:
                self._adapt(len(batch.sending), answer.seconds)
        results = iter(outcomes)
        rows = []
        for item in batch.items:
            outcome = next(results) if item.status == SEND else None
            if item.status == SEND and outcome is None:  # not written: refused key or canceled
                continue
            rows.append((self._record(item, outcome), item.chip.owned))  # the tile's own part: no overlaps
        self._write(rows)
        return True

    def _failed(self, batch: _Batch, exc: CaptionError) -> list:
        """A whole request failed for good: stop after what is in flight; the tiles keep the reason unless the
        key was refused or the user canceled (then they are simply not done)."""
        if self._abort is None:
            self._abort = RunAborted(str(exc), exc.kind, self.stats)
        if exc.kind in ("refused_key", "canceled"):
            return [None] * len(batch.sending)
        self.stats.note_error(str(exc))
        return [exc] * len(batch.sending)

    def _record(self, item: Item, outcome: dict | Exception | None) -> dict:
        chip, common = item.chip, dict(self.settings.common)
        fields: dict[str, Any] = {
            "nodata_before": item.nodata_before,
            "nodata_after": item.nodata_after,
            "created_utc": utc_now_iso(),
        }
        if item.status != SEND:
            if item.status == STATUS_ERROR:
                self.on_tile_error(chip.tile_id, str(item.error))
            return make_record(
                tile_id=chip.tile_id,
                row=chip.row,
                col=chip.col,
                status=item.status,
                error=item.error,
                **fields,
                **common,
            )
        if (
            isinstance(outcome, dict)
            and outcome.get("caption") is not None
            and outcome.get("status", STATUS_OK) == STATUS_OK
        ):
            if outcome.get("model"):
                common["model"] = outcome["model"]
            return make_record(
                tile_id=chip.tile_id,
                row=chip.row,
                col=chip.col,
                status=STATUS_OK,
                caption=str(outcome["caption"]),
                confidence=outcome.get("confidence"),
                changed=bool(outcome.get("changed")),
                **fields,
                **common,
            )
        if isinstance(outcome, dict):
            reason = str(outcome.get("error") or "the backend returned no caption")
        else:
            reason = str(outcome)
        if not isinstance(outcome, CaptionError) or outcome.kind == "rejected":  # a fatal one is told once
            self.on_tile_error(chip.tile_id, reason)
        return make_record(
            tile_id=chip.tile_id, row=chip.row, col=chip.col, status=STATUS_ERROR, error=reason, **fields, **common
        )

    def _write(self, rows: list[tuple[dict, Bounds]]) -> None:
        if rows:
            try:
                self.writer.write(rows)
            except Exception as exc:  # any failure to write ends the run, with its reason
                reason = " ".join(str(exc).split()) or type(exc).__name__
                target = getattr(self.writer, "target", None) or getattr(self.writer, "path", None) or "the output"
                message = f"cannot write to {target}: {reason}"
                self.stats.note_error(message)
                raise RunAborted(message, "write", self.stats) from exc
        pairs = 0
        for record, _ in rows:
            status = record["status"]
            if status == STATUS_OK:
                pairs += 1
                self.stats.captioned += 1
                self.stats.changed += int(bool(record["changed"]))
            elif status == STATUS_SKIPPED_NODATA:
                self.stats.skipped_nodata += 1
            else:
                pairs += 1
                self.stats.errors += 1
                if record["error"]:
                    self.stats.note_error(f"tile {record['tile_id']}: {record['error']}")
        if rows:
            self.stats.record(pairs, len(rows))
            self.on_progress(self.stats)

    def waiting(self, waiting: Waiting) -> None:
        """A client's ``on_retry``: a request waits for the backend; the progress line says so until the next
        written batch (called from request threads)."""
        self.stats.waiting = waiting
        self.on_progress(self.stats)

    def _adapt(self, sent: int, seconds: float) -> None:
        """Halve the batch when a request took more than a third of its timeout (a slow device), so later
        requests do not time out."""
        limit = self.captioner.slow_after_s(sent)
        if limit is not None and self.batch_size > 1 and seconds > limit / 3:
            self.batch_size = max(1, self.batch_size // 2)
            self.on_notice(
                f"a batch of {sent} took {seconds:.0f} s; sending {self.batch_size} chip pairs per request from now on"
            )
