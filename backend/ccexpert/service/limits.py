"""Limits that keep one client from locking the others out (issue 16), on caption requests being served.

``InflightLimiter``: caption requests being served (decoded, queued, captioned), taken only once the body is in:
``max_concurrency`` in all and ``per_key_limit`` per API key (per connection without keys) -> 429 ``overloaded``.
The limits on headers and bodies (size, deadline, memory) are checked before routing by ``middleware.RequestGuard``.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError


class InflightLimiter:
    """Caption requests being served: ``max_concurrency`` in all, ``per_key`` for one fairness id."""

    def __init__(self, state: Any):
        self.state = state
        self.by_key: dict[str, int] = {}

    def slot(self, who: str, label: str) -> _Slot:
        return _Slot(self, who, label)


class _Slot:
    def __init__(self, limiter: InflightLimiter, who: str, label: str):
        self.limiter, self.who, self.label = limiter, who, label

    def __enter__(self) -> _Slot:
        s = self.limiter.state
        settings = s.settings
        with s.lock:
            mine = self.limiter.by_key.get(self.who, 0)
            if s.inflight >= settings.max_concurrency:
                raise ApiError(
                    429,
                    "overloaded",
                    f"{s.inflight} requests in flight (limit {settings.max_concurrency}); retry later",
                    headers={"Retry-After": "1"},
                )
            if mine >= settings.per_key_limit:
                raise ApiError(
                    429,
                    "overloaded",
                    f"{self.label} has {mine} requests in flight (limit {settings.per_key_limit} per key); retry later",
                    headers={"Retry-After": "1"},
                )
            s.inflight += 1
            self.limiter.by_key[self.who] = mine + 1
            s.metrics.inflight.set(s.inflight)
        return self

    def __exit__(self, *exc: object) -> None:
        s = self.limiter.state
        with s.lock:
            s.inflight -= 1
            left = self.limiter.by_key.get(self.who, 1) - 1
            if left > 0:
                self.limiter.by_key[self.who] = left
            else:
                self.limiter.by_key.pop(self.who, None)
            s.metrics.inflight.set(s.inflight)
