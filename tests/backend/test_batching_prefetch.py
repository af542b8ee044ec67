"""The batcher prepares batch k+1 while batch k generates (issue 29), with an engine that splits preparation from
generation (the stand-in: the real CaptionEngine path, `generate` replaced by a wait we control with events)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from ccexpert.service.batching import DynamicBatcher, can_prepare
from ccexpert.standin import STANDIN_CAPTION, standin_engine
from service_helpers import EchoEngine


class Gate:
    """The stand-in's wait: the first batch blocks until `release` is set; records what was prepared by then."""

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Event()  # the first batch is on the "device"
        self.calls = 0

    def __call__(self, seconds: float) -> None:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(10), "the test never released the first batch"


def _engine(gate: Gate, release: bool = True):
    """A stand-in engine whose second `prepare` sets `two` (and releases the first batch when `release`)."""
    engine = standin_engine(0.0, image_size=32, max_batch=2, wait=gate)
    prepared: list[int] = []
    two = threading.Event()
    original = engine.prepare

    def prepare(pairs, first_index=0):
        out = original(pairs, first_index)
        prepared.append(len(pairs))
        if len(prepared) == 2:  # batch 1 is ready while batch 0 is still "on the device": the overlap happened
            two.set()
            if release:
                gate.release.set()
        return out

    engine.prepare = prepare  # type: ignore[method-assign]
    return engine, prepared, two


def _pairs(n: int, size: int = 32):
    return [(np.full((size, size, 3), i, np.uint8), np.full((size, size, 3), i + 1, np.uint8)) for i in range(n)]


def test_batch_k_plus_1_is_prepared_while_batch_k_generates():
    gate = Gate()
    engine, prepared, _ = _engine(gate)
    batcher = DynamicBatcher(engine, max_batch=2, max_wait_s=0.0).start()
    try:
        assert batcher.prefetch == 1
        futures = batcher.submit("c", _pairs(6))
        outcomes = [f.result(10) for f in futures]
    finally:
        batcher.stop()
    assert gate.release.is_set() and len(prepared) == 3
    assert [o.result.caption for o in outcomes] == [STANDIN_CAPTION] * 6
    assert engine.model.batches == [2, 2, 2]


def test_a_bad_pair_in_a_prepared_batch_fails_alone():
    engine = standin_engine(0.0, image_size=32, max_batch=4)
    batcher = DynamicBatcher(engine, max_batch=4, max_wait_s=0.05).start()
    try:
        pairs = _pairs(4)
        pairs[2] = (pairs[2][0], np.zeros((32, 32), np.uint8))  # not HxWx3
        futures = batcher.submit("c", pairs)
        with pytest.raises(ValueError, match="after image"):
            futures[2].result(10)
        assert [futures[i].result(10).result.caption for i in (0, 1, 3)] == [STANDIN_CAPTION] * 3
    finally:
        batcher.stop()


def test_stop_fails_prepared_batches_that_never_ran_and_finishes_the_running_one():
    gate = Gate()
    engine, _, two = _engine(gate, release=False)
    batcher = DynamicBatcher(engine, max_batch=2, max_wait_s=0.0).start()
    futures = batcher.submit("c", _pairs(6))
    assert two.wait(10), "batch 1 was not prepared while batch 0 was held on the device"
    assert gate.entered.wait(10), "batch 0 never reached the device"
    batcher.stop(timeout=0.0)
    gate.release.set()
    assert [f.result(10).result.caption for f in futures[:2]] == [STANDIN_CAPTION] * 2
    for future in futures[2:]:
        with pytest.raises(RuntimeError, match="shutting down"):
            future.result(10)


def test_engines_without_a_prepare_step_run_as_before():
    engine = EchoEngine()
    assert not can_prepare(engine)
    batcher = DynamicBatcher(engine, max_batch=2, max_wait_s=0.0, prefetch=2).start()
    try:
        assert batcher.prefetch == 0
        assert len([f.result(10) for f in batcher.submit("c", _pairs(3, 8))]) == 3
    finally:
        batcher.stop()
    with pytest.raises(ValueError, match="prefetch"):
        DynamicBatcher(engine, prefetch=-1)
