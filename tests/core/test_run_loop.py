"""The one chip loop (``ccexpert_changes.core.run_loop``): order, exactly once, in-flight requests, retries."""

from __future__ import annotations

import random
import threading
import time

import pytest
from ccexpert_changes.core.grid import ChipGrid, RasterGrid
from ccexpert_changes.core.run_loop import SEND, CaptionError, Item, RunAborted, RunLoop, RunSettings, progress_text

GRID = ChipGrid(RasterGrid(0.0, 100.0 * 16, 1.0, -1.0, 100 * 16, 100 * 16, "EPSG:32631"), 100, 0)  # 16 x 16 chips
BOUNDS = (0.0, 0.0, 1600.0, 1600.0)


def chips():
    return list(GRID.chips(BOUNDS))


class MemoryWriter:
    def __init__(self, done=(), fail_after: int | None = None):
        self.done = set(done)
        self.rows: list[dict] = []
        self.transactions = 0
        self.fail_after = fail_after

    def write(self, rows):
        if self.fail_after is not None and self.transactions >= self.fail_after:
            raise OSError(28, "No space left on device")
        self.transactions += 1
        for record, _ in rows:
            self.rows.append(record)
            self.done.add(record["tile_id"])
        return len(rows)


class FakeCaptioner:
    """Echoes ``payload``; records concurrency; optional delays, refusals and failures."""

    def __init__(
        self,
        delay=0.0,
        jitter=0.0,
        reject: set[str] = frozenset(),
        fail_on_call: int | None = None,
        kind="fatal",
        slow_after=None,
    ):
        self.delay, self.jitter, self.reject = delay, jitter, reject
        self.fail_on_call, self.kind, self.slow_after = fail_on_call, kind, slow_after
        self.calls: list[list[str]] = []
        self.active = self.peak = 0
        self.lock = threading.Lock()

    def caption(self, items):
        ids = [i.chip.tile_id for i in items]
        with self.lock:
            self.calls.append(ids)
            call = len(self.calls)
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.delay + random.random() * self.jitter)
            if self.fail_on_call is not None and call >= self.fail_on_call:
                raise CaptionError("backend gone", self.kind)
            if set(ids) & self.reject:
                raise CaptionError("bad chip", "rejected")
            return [{"caption": f"caption of {i.payload}", "confidence": 0.91234567, "changed": True} for i in items]
        finally:
            with self.lock:
                self.active -= 1

    def slow_after_s(self, pairs):
        return self.slow_after


def prepare(chip, nodata=frozenset(), unreadable=frozenset()):
    if chip.tile_id in unreadable:
        return Item(chip, "error", error="read failed")
    if chip.tile_id in nodata:
        return Item(chip, "skipped_nodata", nodata_before=1.0, nodata_after=0.0)
    return Item(chip, SEND, payload=chip.tile_id, size=100, nodata_before=0.0, nodata_after=0.0)


def grid_order(rows):
    """Grid indexes (0-based) of the written rows, whose row/col fields are 1-based (issue 25.8)."""
    return [(r["row"] - 1, r["col"] - 1) for r in rows]


@pytest.mark.parametrize("in_flight", [1, 4])
def test_every_tile_once_in_grid_order_even_with_requests_finishing_out_of_order(in_flight):
    all_chips = chips()
    nodata = {c.tile_id for c in all_chips[5:40:7]}
    writer, captioner = MemoryWriter(), FakeCaptioner(delay=0.001, jitter=0.01)
    stats = RunLoop(
        lambda c: prepare(c, nodata), captioner, writer, RunSettings(batch_size=5, in_flight=in_flight)
    ).run(all_chips, len(all_chips))
    assert [r["tile_id"] for r in writer.rows] == [c.tile_id for c in all_chips]  # grid order, once each
    assert grid_order(writer.rows) == sorted(grid_order(writer.rows))
    assert stats.captioned == 256 - len(nodata) and stats.skipped_nodata == len(nodata) and stats.errors == 0
    assert all(r["caption"] == f"caption of {r['tile_id']}" for r in writer.rows if r["status"] == "ok")
    assert sum(len(c) for c in captioner.calls) == 256 - len(nodata)
    assert captioner.peak == in_flight  # several requests really were at the backend at once


def test_resumed_tiles_are_never_read_or_sent():
    all_chips = chips()
    done = {c.tile_id for c in all_chips[:100]}
    read = []
    writer, captioner = MemoryWriter(done), FakeCaptioner()
    stats = RunLoop(lambda c: read.append(c.tile_id) or prepare(c), captioner, writer, RunSettings(batch_size=8)).run(
        all_chips, len(all_chips)
    )
    assert stats.resumed == 100 and stats.captioned == 156 and not set(read) & done
    assert [r["tile_id"] for r in writer.rows] == [c.tile_id for c in all_chips[100:]]


def test_a_refused_batch_is_retried_pair_by_pair_and_the_bad_pair_fails_alone():
    all_chips = chips()[:20]
    bad = all_chips[6].tile_id
    errors = []
    writer, captioner = MemoryWriter(), FakeCaptioner(reject={bad})
    stats = RunLoop(
        prepare, captioner, writer, RunSettings(batch_size=8), on_tile_error=lambda t, m: errors.append(t)
    ).run(all_chips, 20)
    assert stats.captioned == 19 and stats.errors == 1 and errors == [bad]
    assert {r["status"] for r in writer.rows if r["tile_id"] == bad} == {"error"}
    assert [len(c) for c in captioner.calls] == [8] + [1] * 8 + [8, 4]
    assert stats.first_error == f"tile {bad}: bad chip"


@pytest.mark.parametrize("in_flight", [1, 3])
def test_a_fatal_error_keeps_what_was_answered_marks_the_batch_and_stops(in_flight):
    all_chips = chips()
    writer, captioner = MemoryWriter(), FakeCaptioner(fail_on_call=4)
    with pytest.raises(RunAborted, match="backend gone") as caught:
        RunLoop(prepare, captioner, writer, RunSettings(batch_size=4, in_flight=in_flight)).run(all_chips, 256)
    stats = caught.value.stats
    assert caught.value.kind == "fatal" and stats.first_error == "backend gone"
    ids = [r["tile_id"] for r in writer.rows]
    assert ids == [c.tile_id for c in all_chips[: len(ids)]]  # a clean prefix in grid order: resume continues
    assert [r["status"] for r in writer.rows[:12]] == ["ok"] * 12
    assert {r["status"] for r in writer.rows[12:]} == {"error"} and len(ids) <= 4 * (3 + in_flight)
    assert stats.not_attempted == 256 - len(ids)


def test_a_refused_key_writes_none_of_the_unanswered_tiles():
    writer = MemoryWriter()
    with pytest.raises(RunAborted) as caught:
        RunLoop(prepare, FakeCaptioner(fail_on_call=2, kind="refused_key"), writer, RunSettings(batch_size=4)).run(
            chips(), 256
        )
    assert caught.value.kind == "refused_key" and len(writer.rows) == 4
    assert {r["status"] for r in writer.rows} == {"ok"}


def test_cancel_stops_sending_and_keeps_the_written_prefix():
    canceled = threading.Event()
    writer = MemoryWriter()
    loop = RunLoop(
        prepare,
        FakeCaptioner(),
        writer,
        RunSettings(batch_size=4),
        is_canceled=canceled.is_set,
        on_progress=lambda s: canceled.set() if s.done >= 8 else None,
    )
    with pytest.raises(RunAborted) as caught:
        loop.run(chips(), 256)
    assert caught.value.kind == "canceled" and 8 <= len(writer.rows) < 256
    assert [r["tile_id"] for r in writer.rows] == [c.tile_id for c in chips()[: len(writer.rows)]]


def test_a_full_disk_stops_the_run_with_the_reason():
    with pytest.raises(RunAborted, match="No space left") as caught:
        RunLoop(prepare, FakeCaptioner(), MemoryWriter(fail_after=2), RunSettings(batch_size=4)).run(chips(), 256)
    assert caught.value.kind == "write" and caught.value.stats.captioned == 8


def test_requests_respect_the_byte_limit_and_nodata_rows_ride_along():
    all_chips = chips()[:40]
    nodata = {c.tile_id for c in all_chips[::2]}
    writer, captioner = MemoryWriter(), FakeCaptioner()
    RunLoop(
        lambda c: prepare(c, nodata), captioner, writer, RunSettings(batch_size=8, max_request_bytes=350, hold_rows=4)
    ).run(all_chips, 40)
    assert max(len(c) for c in captioner.calls) == 3  # 3 x 100 bytes fit, a fourth would not
    assert writer.transactions < 40 and len(writer.rows) == 40


def test_unreadable_chips_become_error_tiles_and_the_run_goes_on():
    all_chips = chips()[:10]
    writer = MemoryWriter()
    stats = RunLoop(
        lambda c: prepare(c, unreadable={all_chips[3].tile_id}), FakeCaptioner(), writer, RunSettings(batch_size=4)
    ).run(all_chips, 10)
    assert stats.errors == 1 and stats.captioned == 9 and writer.rows[3]["error"] == "read failed"


def test_slow_requests_halve_the_batch_size():
    notices = []
    captioner = FakeCaptioner(delay=0.05, slow_after=0.09)
    loop = RunLoop(prepare, captioner, MemoryWriter(), RunSettings(batch_size=8), on_notice=notices.append)
    loop.run(chips()[:40], 40)
    assert [len(c) for c in captioner.calls][:4] == [8, 4, 2, 1] and loop.batch_size == 1
    assert "sending 4 chip pairs per request" in notices[0]


def test_progress_reports_done_total_rate_and_time_left():
    seen = []
    RunLoop(
        prepare,
        FakeCaptioner(delay=0.01),
        MemoryWriter(),
        RunSettings(batch_size=8),
        on_progress=lambda s: seen.append((s.done, progress_text(s))),
    ).run(chips()[:32], 32)
    assert [d for d, _ in seen][:4] == [8, 16, 24, 32]
    assert seen[0][1].startswith("8/32 chips · ") and "pairs/s" in seen[0][1] and " s left" in seen[0][1]
    assert "left" not in seen[-1][1]


def test_a_wrong_number_of_results_is_an_error_not_a_shifted_caption():
    class Short(FakeCaptioner):
        def caption(self, items):
            return super().caption(items)[:-1]

    with pytest.raises(RunAborted, match="3 results for 4 pairs"):
        RunLoop(prepare, Short(), MemoryWriter(), RunSettings(batch_size=4)).run(chips()[:8], 8)


def test_ctrl_c_in_a_request_keeps_the_batches_before_it():
    class Interrupt(FakeCaptioner):
        def caption(self, items):
            if len(self.calls) == 2:
                raise KeyboardInterrupt
            return super().caption(items)

    writer = MemoryWriter()
    with pytest.raises(KeyboardInterrupt):
        RunLoop(prepare, Interrupt(), writer, RunSettings(batch_size=4)).run(chips(), 256)
    assert len(writer.rows) == 8


def test_cancel_does_not_wait_for_requests_still_out():
    """A request that never comes back (a stuck connection) must not keep a canceled run waiting."""
    release = threading.Event()
    canceled = threading.Event()

    class Stuck(FakeCaptioner):
        def caption(self, items):
            if len(self.calls) >= 3:
                self.calls.append([i.chip.tile_id for i in items])
                release.wait(30)  # stuck until the test ends
            return super().caption(items)

    writer = MemoryWriter()
    loop = RunLoop(
        prepare,
        Stuck(),
        writer,
        RunSettings(batch_size=2, in_flight=3),
        is_canceled=canceled.is_set,
        on_progress=lambda s: canceled.set() if s.done >= 4 else None,
    )
    start = time.monotonic()
    with pytest.raises(RunAborted) as caught:
        loop.run(chips(), 256)
    release.set()
    assert caught.value.kind == "canceled" and time.monotonic() - start < 10
    assert [r["tile_id"] for r in writer.rows] == [c.tile_id for c in chips()[: len(writer.rows)]]
