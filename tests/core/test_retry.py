"""The retry policy shared by the plugin's and the backend's clients (core.retry)."""

from __future__ import annotations

from ccexpert_changes.core import retry


def test_which_answers_are_retried():
    assert all(retry.retryable_status(s) for s in (429, 500, 502, 503, 504))
    assert not retry.retryable_status(503, "model_failed")
    assert not any(retry.retryable_status(s) for s in (400, 401, 403, 404, 413, 422))
    assert retry.is_server_error(500) and retry.is_server_error(503, "engine_error")
    assert not retry.is_server_error(503, "not_ready") and not retry.is_server_error(None)


def test_backoff_grows_is_capped_jittered_and_floored_by_retry_after():
    delays = [[retry.backoff_delay(n, 1.0, 30.0) for _ in range(50)] for n in (1, 2, 3, 10)]
    assert all(0.5 <= d <= 1.0 for d in delays[0]) and all(1.0 <= d <= 2.0 for d in delays[1])
    assert all(2.0 <= d <= 4.0 for d in delays[2]) and all(15.0 <= d <= 30.0 for d in delays[3])
    assert len({round(d, 6) for d in delays[0]}) > 1
    assert retry.backoff_delay(1, 0.001, 5.0, retry_after=3.0) == 3.0


def test_give_up_order():
    kw = {"now": 0.0, "delay": 1.0, "deadline": 10.0}
    assert retry.give_up(1, retries=None, server_error=False, **kw) is None
    assert retry.give_up(3, retries=2, server_error=False, **kw) == "retries"
    assert retry.give_up(3, retries=None, server_error=True, **kw) == "server_error"
    assert retry.give_up(2, retries=None, server_error=True, **kw) is None
    assert retry.give_up(1, retries=None, server_error=False, now=9.5, delay=1.0, deadline=10.0) == "budget"


def test_unreachable_message_says_what_to_do():
    assert retry.unreachable_message("http://127.0.0.1:8000", retry.REFUSED) == (
        "Cannot reach the CCExpert backend at http://127.0.0.1:8000 (connection refused). Start it with "
        "`ccexpert serve` or check the backend URL in the CCExpert settings."
    )
