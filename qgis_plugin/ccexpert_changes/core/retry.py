"""The retry policy both backend clients follow (the plugin's on QGIS networking, ``ccexpert.client`` on requests):
which failures are retried, the backoff schedule and the budget. Qt-free, stdlib only; each client keeps its own
transport and words its own errors.

- Retried: 429 and 5xx answers (a 503 ``model_failed`` excepted: the model cannot caption, a resend cannot fix it),
  timeouts and dropped connections, for at most a budget in seconds (``RETRY_BUDGET_S``, five minutes; the probes
  ``/v1/info`` and ``/v1/auth/check`` get ``PROBE_BUDGET_S``), and at most ``retries`` times when a count is given.
- A failing model (500, ``engine_error``/``internal_error``) is not load: ``SERVER_ERROR_RETRIES`` retries only.
- Not retried: a host name that does not resolve, and a refused connection to a backend that has not answered
  this client yet. Nothing listens there, or the URL is wrong; waiting does not start a backend, so the user hears
  at once what to do (:func:`unreachable_message`). A backend that answered before and now refuses is restarting
  (a deploy, a crash under a supervisor): that is retried like a dropped connection (:func:`refusal_is_final`).
- The wait after failed attempt n (1-based) is ``backoff * 2^(n-1)``, capped at ``max_backoff``, times a random
  0.5-1 (jitter: clients refused together do not come back together), never shorter than the server's
  ``Retry-After``; a wait that would end past the budget is not started.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_BUDGET_S = 300.0  # seconds of retrying one request before giving up
PROBE_BUDGET_S = 10.0  # the same for /v1/info and /v1/auth/check: a wrong URL is reported in seconds
SERVER_ERROR_RETRIES = 2  # a failing model (500, engine_error) will most likely fail again: a few retries only
SERVER_ERROR_CODES = frozenset({"engine_error", "internal_error"})
NOT_RETRIED_CODES = frozenset({"model_failed"})  # 503 model_failed: the model cannot caption

# why a connection could not be made at all; these are never retried
REFUSED = "connection refused"
HOST_NOT_FOUND = "host not found"


def retryable_status(status: int, code: str | None = None) -> bool:
    """Whether an HTTP error answer is worth resending (load, a restart, a proxy hiccup)."""
    return status in RETRY_STATUSES and code not in NOT_RETRIED_CODES


def is_server_error(status: int | None, code: str | None = None) -> bool:
    """A failing model rather than load: retried ``SERVER_ERROR_RETRIES`` times only."""
    return status == 500 or code in SERVER_ERROR_CODES


def backoff_delay(attempt: int, backoff: float, max_backoff: float, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``backoff * 2^(attempt-1)`` capped at
    ``max_backoff``, times a random 0.5-1, never less than the server's ``Retry-After``."""
    jitter = random.uniform(0.5, 1.0)  # nosec B311 - spreading retries, not security
    delay = min(max_backoff, backoff * 2 ** min(attempt - 1, 60)) * jitter
    return max(delay, retry_after) if retry_after is not None else delay


def give_up(
    attempt: int, *, retries: int | None, server_error: bool, now: float, delay: float, deadline: float
) -> str | None:
    """Why to stop after failed attempt ``attempt`` (None: wait ``delay`` and retry): ``"retries"`` (the count
    ``retries`` is used up), ``"server_error"`` (the model kept failing) or ``"budget"`` (the wait would end past
    ``deadline``; ``now`` and ``deadline`` on the same monotonic clock)."""
    if retries is not None and attempt > retries:
        return "retries"
    if server_error and attempt > SERVER_ERROR_RETRIES:
        return "server_error"
    if now + delay > deadline:
        return "budget"
    return None


def refusal_is_final(reason: str, answered_before: bool) -> bool:
    """Whether a connection that could not be made (``reason``: REFUSED or HOST_NOT_FOUND) ends the request at
    once: always for an unknown host; for a refused connection only when this backend never answered (a wrong
    URL or a backend not started), not when it did (a restart mid-run, worth waiting for)."""
    return reason == HOST_NOT_FOUND or not answered_before


def unreachable_message(url: str, reason: str) -> str:
    """What the user reads when nothing answers at ``url`` (``reason``: REFUSED, HOST_NOT_FOUND or the
    transport's own words)."""
    return (
        f"Cannot reach the CCExpert backend at {url} ({reason}). Start it with `ccexpert serve` or check the "
        "backend URL in the CCExpert settings."
    )


@dataclass(frozen=True)
class Waiting:
    """A request waits for the backend: ``attempt`` is the try to come, after ``next_try_s``; the request gives up in
    ``give_up_in_s`` (its retry budget). Both clients hand it to ``on_retry`` before each wait, so the progress line
    says what is going on during an outage instead of freezing on a stale time left (issue 25)."""

    attempt: int
    next_try_s: float
    give_up_in_s: float


def duration_text(seconds: float) -> str:
    """``"4 min 41 s"``, ``"28 s"``: a wait as the progress line says it."""
    minutes, secs = divmod(max(0, int(round(seconds))), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def waiting_text(waiting: Waiting) -> str:
    """``"waiting for the backend: attempt 7, next try in 28 s, giving up in 4 min 41 s"``."""
    return (
        f"waiting for the backend: attempt {waiting.attempt}, next try in {duration_text(waiting.next_try_s)}, "
        f"giving up in {duration_text(waiting.give_up_in_s)}"
    )


__all__ = [
    "Waiting",
    "duration_text",
    "waiting_text",
    "HOST_NOT_FOUND",
    "NOT_RETRIED_CODES",
    "PROBE_BUDGET_S",
    "REFUSED",
    "RETRY_BUDGET_S",
    "RETRY_STATUSES",
    "SERVER_ERROR_CODES",
    "SERVER_ERROR_RETRIES",
    "backoff_delay",
    "give_up",
    "refusal_is_final",
    "is_server_error",
    "retryable_status",
    "unreachable_message",
]
