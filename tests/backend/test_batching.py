"""DynamicBatcher: merging, max wait, fairness, idempotency, overload, failure isolation."""

from __future__ import annotations

import threading
import time

import pytest
from ccexpert.service.batching import DynamicBatcher, Overloaded
from service_helpers import EchoEngine, echo_caption, solid


def pair(b: int, a: int, size: int = 8):
    return solid(b, size), solid(a, size)


def test_concurrent_submissions_are_merged_up_to_max_batch():
    engine = EchoEngine(delay_per_pair=0.01)
    batcher = DynamicBatcher(engine, max_batch=4, max_wait_s=0.05).start()
    try:
        futures = []
        threads = [
            threading.Thread(target=lambda i=i: futures.extend(batcher.submit(f"c{i}", [pair(i, i + 1)])))
            for i in range(10)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = [f.result(5) for f in futures]
        assert sorted(r.result.caption for r in results) == sorted(echo_caption(i, i + 1) for i in range(10))
        assert max(engine.batches) > 1 and max(engine.batches) <= 4
        assert sum(engine.batches) == 10
    finally:
        batcher.stop()


def test_lone_pair_waits_at_most_max_wait():
    batcher = DynamicBatcher(EchoEngine(), max_batch=64, max_wait_s=0.05).start()
    try:
        t0 = time.monotonic()
        (future,) = batcher.submit("c", [pair(1, 2)])
        future.result(5)
        assert time.monotonic() - t0 < 1.0
        assert future.result().batch_size == 1
    finally:
        batcher.stop()


def test_huge_client_cannot_starve_a_small_one():
    engine = EchoEngine(delay_per_pair=0.005)
    batcher = DynamicBatcher(engine, max_batch=4, max_wait_s=0.0, max_pending=1000).start()
    try:
        big = batcher.submit("big", [pair(1, 1)] * 200)  # 50 batches worth, queued first
        time.sleep(0.02)
        (small,) = batcher.submit("small", [pair(2, 3)])
        small.result(10)
        finished_big = sum(f.done() for f in big)
        assert finished_big <= 3 * 4 + 4, f"small client waited behind {finished_big} pairs of the big one"
        for f in big:
            f.result(30)
    finally:
        batcher.stop()


def test_same_key_is_computed_once():
    engine = EchoEngine(delay_per_pair=0.01)
    batcher = DynamicBatcher(engine, max_batch=8, max_wait_s=0.01).start()
    try:
        first = batcher.submit("c", [pair(5, 6), pair(7, 8)], keys=["k1", "k2"])
        again = batcher.submit("c", [pair(5, 6)], keys=["k1"])  # resend while in flight
        assert again[0] is first[0]
        first[0].result(5)
        first[1].result(5)
        later = batcher.submit("c", [pair(5, 6)], keys=["k1"])  # resend after it finished: cached
        assert later[0].result(1).result.caption == echo_caption(5, 6)
        assert engine.pairs_seen == 2
    finally:
        batcher.stop()


def test_overload_refuses_whole_submission():
    engine = EchoEngine(delay_per_pair=0.05)
    batcher = DynamicBatcher(engine, max_batch=1, max_wait_s=0.0, max_pending=3).start()
    try:
        batcher.submit("a", [pair(1, 1)] * 3)
        with pytest.raises(Overloaded) as info:
            batcher.submit("b", [pair(2, 2)] * 2)
        assert info.value.retry_after >= 1.0
    finally:
        batcher.stop()


def test_failing_pair_is_isolated_from_its_batch():
    engine = EchoEngine(fail_on=13)
    batcher = DynamicBatcher(engine, max_batch=4, max_wait_s=0.05).start()
    try:
        futures = batcher.submit("c", [pair(12, 1), pair(13, 1), pair(14, 1)])
        assert futures[0].result(5).result.caption == echo_caption(12, 1)
        with pytest.raises(ValueError, match="before mean 13"):
            futures[1].result(5)
        assert futures[2].result(5).result.caption == echo_caption(14, 1)
    finally:
        batcher.stop()


def test_different_max_new_tokens_are_not_mixed_in_one_batch():
    class Recording(EchoEngine):
        tokens: list[int] = []

        def caption(self, pairs, max_new_tokens=64):
            self.tokens.append((len(pairs), max_new_tokens))
            return super().caption(pairs, max_new_tokens)

    engine = Recording()
    batcher = DynamicBatcher(engine, max_batch=8, max_wait_s=0.05).start()
    try:
        a = batcher.submit("a", [pair(1, 1)] * 2, max_new_tokens=8)
        b = batcher.submit("b", [pair(2, 2)] * 2, max_new_tokens=16)
        for f in a + b:
            f.result(5)
        assert sorted(engine.tokens) == [(2, 8), (2, 16)]
    finally:
        batcher.stop()


def test_stop_fails_queued_pairs_and_refuses_new_ones():
    engine = EchoEngine(delay_per_pair=0.2)
    batcher = DynamicBatcher(engine, max_batch=1, max_wait_s=0.0).start()
    futures = batcher.submit("c", [pair(1, 1)] * 3)
    time.sleep(0.05)
    batcher.stop()
    assert futures[0].result(5).result.caption == echo_caption(1, 1)  # the running batch finishes
    with pytest.raises(RuntimeError, match="shutting down"):
        futures[2].result(1)
    with pytest.raises(RuntimeError, match="not running"):
        batcher.submit("c", [pair(1, 1)])
