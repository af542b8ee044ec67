"""The one run driver's rules (issue 26): what a backend advertises bounds every request, and what a run that
stopped keeps."""

from __future__ import annotations

import pytest
from ccexpert_changes.core.driver import (
    ENVELOPE_BYTES,
    MAX_IN_FLIGHT,
    Hooks,
    RunPlan,
    drive,
    keep_output,
    model_label,
    settings_from_info,
)
from ccexpert_changes.core.grid import Chip
from ccexpert_changes.core.run_loop import SEND, CaptionError, Item, RunSettings


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


# -- drive: the keep/discard rule on every way out ---------------------------------------------------------------


class Store:
    """An output that records what the driver decided."""

    def __init__(self, replaces: bool):
        self.done: set[str] = set()
        self.replaces = replaces
        self.rows: list = []
        self.finished: bool | None = None
        self.discarded = False

    def write(self, rows):
        self.rows.extend(rows)
        return len(rows)

    def finish(self, keep: bool) -> bool:
        self.finished = keep
        return keep or not self.replaces

    def discard(self) -> None:
        self.discarded = True


class Answers:
    def __init__(self, kind: str | None = None):
        self.kind = kind

    def caption(self, items):
        if self.kind:
            raise CaptionError(f"{self.kind} happened", self.kind)
        return [{"caption": "c", "confidence": 0.5, "changed": True} for _ in items]

    def slow_after_s(self, pairs):
        return None


def _chips(n: int) -> list[Chip]:
    boxes = [(c * 10.0, 0.0, (c + 1) * 10.0, 10.0) for c in range(n)]
    return [Chip(0, c, c * 4, 0, 4, f"r0c{c}_abcd1234", boxes[c], boxes[c]) for c in range(n)]


def _prepare(chip: Chip) -> Item:
    return Item(chip, SEND, payload=chip.tile_id)


def test_drive_keeps_a_clean_run_and_stamps_the_plan_fields():
    store = Store(replaces=True)
    result = drive(RunPlan(_chips(3), 3, {"run_id": "r1"}), _prepare, Answers(), store, RunSettings(batch_size=2))
    assert result.held and result.aborted is None and store.finished is True
    assert [record["run_id"] for record, _ in store.rows] == ["r1"] * 3


def test_drive_on_a_refused_key_discards_and_holds_nothing():
    store = Store(replaces=False)
    result = drive(RunPlan(_chips(3), 3), _prepare, Answers("refused_key"), store, RunSettings())
    assert store.discarded and not result.held and result.aborted.kind == "refused_key" and store.rows == []


def test_drive_leaves_a_replaced_output_when_the_run_failed_and_finishes_on_ctrl_c():
    store = Store(replaces=True)
    result = drive(RunPlan(_chips(2), 2), _prepare, Answers("fatal"), store, RunSettings(batch_size=1))
    assert result.aborted.kind == "fatal" and store.finished is False and not result.held

    def interrupted(chip: Chip) -> Item:
        raise KeyboardInterrupt

    store = Store(replaces=False)
    with pytest.raises(KeyboardInterrupt):
        drive(RunPlan(_chips(2), 2), interrupted, Answers(), store, RunSettings(), Hooks())
    assert store.finished is True  # finished on the way out, then the interrupt goes on
