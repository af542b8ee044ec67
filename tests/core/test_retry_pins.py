"""Retry waits at the backoff cap stay jittered (issue 30): clients refused together must not come back together.
The older test checked distinct waits for attempt 1 only, where the cap never applies."""

from __future__ import annotations

import random

import pytest
from ccexpert_changes.core import retry


@pytest.mark.parametrize("attempt", [6, 10, 40])
def test_waits_at_the_cap_are_spread_over_half_to_all_of_it(attempt, monkeypatch):
    """Broken copy: the jitter inside the cap (``min(cap, base * 2^n * jitter)``) made every wait at attempt 6
    and later exactly 30 s; this test failed. The two jitter extremes give exactly half the cap and the cap."""
    monkeypatch.setattr(retry.random, "uniform", lambda lo, hi: lo)
    assert retry.backoff_delay(attempt, 1.0, 30.0) == 15.0
    monkeypatch.setattr(retry.random, "uniform", lambda lo, hi: hi)
    assert retry.backoff_delay(attempt, 1.0, 30.0) == 30.0


def test_many_clients_at_the_cap_do_not_wait_alike():
    random.seed(30)
    waits = [retry.backoff_delay(12, 1.0, 30.0) for _ in range(200)]
    assert all(15.0 <= w <= 30.0 for w in waits)
    assert len({round(w, 3) for w in waits}) > 150  # spread, not one value
    assert max(waits) - min(waits) > 10.0
    # Retry-After still floors a jittered wait at the cap
    assert all(retry.backoff_delay(12, 1.0, 30.0, retry_after=40.0) == 40.0 for _ in range(20))
