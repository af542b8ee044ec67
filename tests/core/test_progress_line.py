"""What the progress line says (issue 25 finding 11): the pace of the last minute, and the retry state during a
backend outage instead of a frozen time left. A fake clock, no sleeps."""

from __future__ import annotations

from ccexpert_changes.core.retry import Waiting, duration_text, waiting_text
from ccexpert_changes.core.run_loop import RunStats, progress_text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_waiting_line_reads_as_the_analyst_asked():
    assert waiting_text(Waiting(7, 28.2, 281)) == (
        "waiting for the backend: attempt 7, next try in 28 s, giving up in 4 min 41 s"
    )
    assert duration_text(59.6) == "1 min 00 s" and duration_text(-3) == "0 s"


def test_the_rate_is_the_last_minutes_after_an_outage():
    clock = Clock()
    stats = RunStats(total=121, clock=clock)
    for _ in range(12):  # 24 chips in the first minute: 0.4 pairs/s
        clock.now += 5
        stats.record(2, 2)
        stats.captioned += 2
    assert abs(stats.rate() - 0.4) < 1e-9
    clock.now += 300  # five minutes of outage
    stats.waiting = Waiting(7, 28, 281)
    assert progress_text(stats) == (
        "24/121 chips · waiting for the backend: attempt 7, next try in 28 s, giving up in 4 min 41 s"
    )
    assert stats.rate() == 0.0 and stats.eta_s() is None  # no pace during the outage, no made-up time left
    for _ in range(6):  # recovered: 12 pairs in 30 s
        clock.now += 5
        stats.record(2, 2)
        stats.captioned += 2
    assert stats.waiting is None  # a written batch ends the waiting line
    assert abs(stats.rate() - 12 / 60) < 1e-9  # the last minute's pace, not 36 pairs over 6 min
    assert stats.eta_s() == (121 - 36) * 60 / 12
    assert progress_text(stats) == "36/121 chips · 0.2 pairs/s · 7 min 05 s left"


def test_a_short_run_divides_by_its_own_length():
    clock = Clock()
    stats = RunStats(total=10, clock=clock)
    clock.now += 2
    stats.record(4, 4)
    stats.captioned += 4
    assert stats.rate() == 2.0 and stats.eta_s() == 6 * 2 / 4
