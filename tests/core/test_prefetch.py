"""The chip prefetcher: order, bounded look-ahead, errors re-raised in the task thread, clean stop."""

from __future__ import annotations

import threading
import time

import pytest
from ccexpert_changes.core.prefetch import Prefetcher


def test_items_arrive_in_order_and_the_producer_stays_bounded():
    produced = []

    def produce():
        for i in range(50):
            produced.append(i)
            yield i

    with Prefetcher(produce, depth=3) as items:
        it = iter(items)
        assert next(it) == 0
        time.sleep(0.3)
        assert len(produced) <= 1 + 3 + 1  # taken + queued + one blocked in put
        assert list(it) == list(range(1, 50))


def test_producer_errors_are_raised_in_the_consumer():
    def produce():
        yield 1
        raise ValueError("AFTER raster read failed")

    with Prefetcher(produce, depth=2) as items, pytest.raises(ValueError, match="read failed"):
        list(items)


def test_close_stops_a_producer_that_is_ahead():
    def produce():
        i = 0
        while True:
            i += 1
            yield i

    prefetcher = Prefetcher(produce, depth=2)
    assert next(iter(prefetcher)) == 1
    prefetcher.close()
    assert not any(t.name == "ccexpert-chips" and t.is_alive() for t in threading.enumerate())
