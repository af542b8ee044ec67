"""Change facts from hand-made masks: counts, 3x3 grid positions, appear / disappear / replace, failure modes."""

from __future__ import annotations

import numpy as np
import pytest
from ccexpert_training.maskcaption.facts import (
    CLASS_IDS,
    ChangeFact,
    ChangeFacts,
    extract_facts,
    grid_location,
    size_name,
)

H = W = 240  # divisible by 3: grid cells are 80x80


def _square(mask: np.ndarray, row: int, col: int, side: int = 14, value: int = 255) -> None:
    mask[row : row + side, col : col + side] = value


def test_empty_mask_is_no_change():
    facts = extract_facts(np.zeros((H, W), np.uint8))
    assert not facts.changed
    assert facts.facts == ()
    assert facts.changed_fraction == 0.0


def test_counts_connected_components_and_keeps_one_cell():
    mask = np.zeros((H, W), np.uint8)
    for col in (5, 30, 55):  # three separate squares inside the top-left cell
        _square(mask, 10, col)
    facts = extract_facts(mask)
    assert len(facts.facts) == 1
    fact = facts.facts[0]
    assert (fact.cls, fact.kind, fact.count, fact.location) == ("building", "appear", 3, "top left")


def test_touching_squares_are_one_component_including_diagonals():
    mask = np.zeros((H, W), np.uint8)
    _square(mask, 100, 100, 10)
    _square(mask, 110, 110, 10)  # touches the first only at a corner: 8-connected
    assert extract_facts(mask).facts[0].count == 1


@pytest.mark.parametrize(
    ("row", "col", "name"),
    [
        (10, 10, "top left"),
        (10, 110, "top"),
        (10, 200, "top right"),
        (110, 10, "left"),
        (110, 110, "center"),
        (110, 200, "right"),
        (200, 10, "bottom left"),
        (200, 110, "bottom"),
        (200, 200, "bottom right"),
    ],
)
def test_every_grid_cell(row, col, name):
    mask = np.zeros((H, W), np.uint8)
    _square(mask, row, col, 20)
    assert extract_facts(mask).facts[0].location == name
    assert grid_location(row + 10, col + 10, H, W) == name


def test_components_along_a_side_and_spread_out():
    mask = np.zeros((H, W), np.uint8)
    _square(mask, 10, 10)
    _square(mask, 10, 200)  # top left + top right -> "top"
    assert extract_facts(mask).facts[0].location == "top"
    _square(mask, 200, 110)  # and one at the bottom -> spread out
    facts = extract_facts(mask)
    assert facts.facts[0].location == ""
    assert facts.facts[0].count == 3


def test_tiny_specks_are_ignored():
    mask = np.zeros((H, W), np.uint8)
    mask[5, 5] = 255
    mask[100, 100:102] = 255
    assert not extract_facts(mask).changed


def test_appear_and_disappear_from_class_maps():
    before = np.full((H, W), CLASS_IDS["bareland"], np.uint8)
    after = before.copy()
    after[20:40, 20:40] = CLASS_IDS["building"]  # built on bareland, top left
    before[180:230, 150:230] = CLASS_IDS["forest"]  # trees cleared, bottom right
    before[100:130, 180:200] = CLASS_IDS["building"]  # demolished, right
    facts = extract_facts(before != after, before, after)
    by_cls = {(f.cls, f.kind): f for f in facts.facts}
    assert set(by_cls) == {("building", "appear"), ("forest", "disappear"), ("building", "disappear")}
    assert by_cls[("building", "appear")].location == "top left"
    assert by_cls[("building", "appear")].replaced == "bareland"
    assert by_cls[("forest", "disappear")].location == "bottom right"
    assert by_cls[("building", "disappear")].location == "right"
    # largest change first
    assert facts.facts[0].cls == "forest"


def test_replace_and_what_was_replaced():
    before = np.full((H, W), CLASS_IDS["grass"], np.uint8)
    before[90:150, 90:150] = CLASS_IDS["building"]
    after = before.copy()
    after[90:150, 90:150] = CLASS_IDS["parking lot"]
    after[10:30, 10:60] = CLASS_IDS["road"]
    facts = extract_facts(before != after, before, after)
    by_cls = {f.cls: f for f in facts.facts}
    assert (by_cls["parking lot"].kind, by_cls["parking lot"].replaced) == ("replace", "building")
    assert (by_cls["road"].kind, by_cls["road"].replaced) == ("appear", "grass")


def test_semantic_mask_values_give_the_class():
    mask = np.zeros((H, W), np.uint8)
    mask[10:30, 10:30] = CLASS_IDS["road"]
    mask[150:200, 150:200] = CLASS_IDS["water"]
    classes = {f.cls for f in extract_facts(mask).facts}
    assert classes == {"road", "water"}


def test_binary_mask_uses_given_class_and_kind():
    mask = np.zeros((H, W), np.uint8)
    _square(mask, 100, 100, 30, value=1)
    fact = extract_facts(mask, cls="road", kind="disappear").facts[0]
    assert (fact.cls, fact.kind) == ("road", "disappear")


def test_size_names():
    assert size_name(0.001) == "small"
    assert size_name(0.05) == "medium"
    assert size_name(0.3) == "large"


def test_round_trip_dict():
    mask = np.zeros((H, W), np.uint8)
    _square(mask, 100, 100, 30)
    facts = extract_facts(mask)
    assert ChangeFacts.from_dict(facts.to_dict()) == ChangeFacts(facts.facts, round(facts.changed_fraction, 6))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"cls": "spaceship"}, "unknown changed class"), ({"kind": "explode"}, "unknown change kind")],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        extract_facts(np.zeros((H, W), np.uint8), **kwargs)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="change mask: expected a 2-D mask"):
        extract_facts(np.zeros((2, H, W, 5), np.uint8))
    with pytest.raises(ValueError, match="before labels: shape"):
        extract_facts(np.zeros((H, W), np.uint8), np.zeros((H, W + 1), np.uint8), np.zeros((H, W), np.uint8))


def test_fact_validation():
    with pytest.raises(ValueError, match="count must be >= 1"):
        ChangeFact("building", "appear", 0, "top", "small", 0.01)
    with pytest.raises(ValueError, match="unknown location"):
        ChangeFact("building", "appear", 1, "north", "small", 0.01)
