"""Limits that keep one client from locking the others out (issues 16 and 24), on caption requests.

``InflightLimiter``:

- ``key_slot``: caption requests of one API key (one connection without keys), taken as soon as the headers are
  in, *before* the body is read: a request of a key at its ``per_key_limit`` waits (unread: TCP holds its body
  back) up to ``key_slot_wait_s`` (1 s) for one of the key's requests to finish, then is answered 429 without
  costing the server a body read and parse (issue 24: one key's clients ignoring Retry-After slowed another key's
  run 6.8x). The wait paces clients that ignore Retry-After: answered at once, they reconnect and resend in a
  tight loop;
- ``slot``: caption requests being served (decoded, queued, captioned), ``max_concurrency`` in all, taken only
  once the body is in, so a slow or idle client holds no global slot while it sends.

The limits on headers and bodies (size, deadline, memory) are checked before routing by ``middleware.RequestGuard``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

from .errors import ApiError


class InflightLimiter:
    """Caption requests: ``per_key_limit`` for one fairness id (from its headers on), ``max_concurrency`` in all
    (being served)."""

    def __init__(self, state: Any):
        self.state = state
        self.by_key: dict[str, int] = {}
        self._freed = asyncio.Event()  # set (and replaced) whenever a key slot is released

    @asynccontextmanager
    async def key_slot(self, who: str, label: str) -> AsyncIterator[None]:
        """One of ``who``'s requests, from before its body is read until it is answered; 429 when the key's limit
        is still reached after ``key_slot_wait_s``. Runs on the app's event loop (the slots are released there)."""
        s = self.state
        limit = s.settings.per_key_limit
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.settings.key_slot_wait_s
        while True:
            with s.lock:
                mine = self.by_key.get(who, 0)
                if mine < limit:
                    self.by_key[who] = mine + 1
                    break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ApiError(
                    429,
                    "overloaded",
                    f"{label} has {mine} requests in flight (limit {limit} per key); retry later",
                    headers={"Retry-After": "1", "Connection": "close"},  # its body is not read
                )
            freed = self._freed
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(freed.wait(), remaining)
        try:
            yield
        finally:
            with s.lock:
                left = self.by_key.get(who, 1) - 1
                if left > 0:
                    self.by_key[who] = left
                else:
                    self.by_key.pop(who, None)
            self._freed.set()  # wake the waiters (each retries), then a fresh event for the next wait
            self._freed = asyncio.Event()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """One request being served (its body in); 429 over ``max_concurrency``."""
        s = self.state
        settings = s.settings
        with s.lock:
            if s.inflight >= settings.max_concurrency:
                raise ApiError(
                    429,
                    "overloaded",
                    f"{s.inflight} requests in flight (limit {settings.max_concurrency}); retry later",
                    headers={"Retry-After": "1"},
                )
            s.inflight += 1
            s.metrics.inflight.set(s.inflight)
        try:
            yield
        finally:
            with s.lock:
                s.inflight -= 1
                s.metrics.inflight.set(s.inflight)
