"""Counting accuracy's parts (the quantity a caption gives, the one the generator expects) and one scored split."""

from __future__ import annotations

import pytest
from ccexpert_training.demo_eval import caption_quantity, expected_quantity, score_split


@pytest.mark.parametrize(
    ("caption", "cls", "quantity"),
    [
        ("two houses are built at the top", "building", "two"),
        ("a new building appears on the bareland", "building", "a"),
        ("several buildings have been constructed", "building", "several"),
        ("many houses are removed in the center", "building", "many"),
        ("an road is built", "road", "a"),
        ("a road is built and three houses are removed", "building", "three"),
        ("houses are built at the top", "building", None),  # no quantity
        ("two roads are built", "building", None),  # another object
        ("the scene is the same as before", "road", None),
    ],
)
def test_caption_quantity(caption, cls, quantity):
    assert caption_quantity(caption, cls) == quantity


def _fact(cls, count):
    return {"cls": cls, "kind": "appear", "count": count, "location": "top", "size": "small", "area_fraction": 0.1}


def test_expected_quantity_only_for_one_countable_kind():
    assert expected_quantity({"facts": [_fact("building", 2)]}) == ("building", "two")
    assert expected_quantity({"facts": [_fact("building", 7)]}) == ("building", "several")
    assert expected_quantity({"facts": [_fact("building", 9)]}) == ("building", "many")
    assert expected_quantity({"facts": [_fact("building", 1), _fact("forest", 1)]}) == ("building", "a")
    assert expected_quantity({"facts": [_fact("building", 1), _fact("road", 1)]}) is None
    assert expected_quantity({"facts": [_fact("forest", 2)]}) is None
    assert expected_quantity({"facts": []}) is None


def test_score_split_with_a_perfect_and_a_silent_captioner(tmp_path):
    """Captions equal to the first reference score far above always "no change"; silence scores like it."""
    from ccexpert_training.records import read_records

    first_refs: dict[str, str] = {}

    def oracle(pairs):
        records = read_records(tmp_path / "oracle" / "test.jsonl")
        return [first_refs.setdefault(r.uid, r.captions[0]) for r in records][: len(pairs)]

    perfect = score_split(oracle, seed=77, pairs=20, workdir=tmp_path / "oracle", workers=1)
    assert perfect.pairs == 20 and perfect.model["change_accuracy"] == 100.0
    assert perfect.s_m_ratio > 1.5
    assert perfect.counted_pairs > 0 and perfect.counting_accuracy == 100.0
    silent = score_split(
        lambda pairs: ["the scene is the same as before"] * len(pairs),
        seed=77,
        pairs=20,
        workdir=tmp_path / "silent",
        workers=1,
    )
    assert silent.s_m_ratio == pytest.approx(1.0, abs=0.05) and silent.counting_accuracy == 0.0
