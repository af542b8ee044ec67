"""The one run driver's rules (issue 26): what a backend advertises bounds every request, and what a run that
stopped keeps."""

from __future__ import annotations

from ccexpert_changes.core.driver import ENVELOPE_BYTES, MAX_IN_FLIGHT, keep_output, model_label, settings_from_info


def test_the_batch_is_capped_at_the_servers_max_batch():
    assert settings_from_info({"max_batch": 2}, 8, 1).batch_size == 2
    assert settings_from_info({"max_batch": 16}, 12, 1).batch_size == 12
    assert settings_from_info({"max_batch": 4}, None, 1).batch_size == 4  # the default (8) is capped too
    assert settings_from_info({}, None, 1).batch_size == 8
    assert settings_from_info({"max_batch": "many"}, 5, 1).batch_size == 5  # a bad value is no limit


def test_the_byte_budget_leaves_room_for_the_envelope():
    assert settings_from_info({"max_body_bytes": 65536}, 8, 1).max_request_bytes == 65536 - ENVELOPE_BYTES
    assert settings_from_info({}, 8, 1).max_request_bytes == 0  # no limit advertised: none


def test_in_flight_is_what_was_asked_else_advertised_and_never_over_the_constant():
    assert settings_from_info({"max_in_flight": 3}, 8, None).in_flight == 3
    assert settings_from_info({"max_in_flight": 3}, 8, 2).in_flight == 2
    assert settings_from_info({"max_in_flight": 1000}, 8, None).in_flight == MAX_IN_FLIGHT
    assert settings_from_info({"max_in_flight": None}, 8, 0).in_flight == 1
    assert settings_from_info({}, 8, None, {"run_id": "r"}).common == {"run_id": "r"}


def test_keep_rule():
    assert not keep_output(True, True, False, 0, 0)  # a refused key keeps nothing
    assert keep_output(False, False, False, 3, 5)  # nothing to replace: what was written stays
    assert keep_output(True, False, True, 0, 0)  # replaces only after a clean run
    assert not keep_output(True, False, True, 1, 0)
    assert not keep_output(False, False, True, 0, 4)


def test_model_label():
    assert model_label({"model_name": "ccexpert", "model_version": "0.3"}) == "ccexpert 0.3"
    assert model_label({"model_name": "echo"}) == "echo"
