"""Change areas (core.areas): grouping by grid adjacency and kind, objects counted once across overlapping chips."""

from __future__ import annotations

from ccexpert_changes.core.areas import AREA_FIELD_ALIASES, AREA_FIELDS, group_areas
from ccexpert_changes.core.fact_fields import tile_fields


def tile(row, col, caption, *, changed=True, size=100.0, stride=100.0, status="ok"):
    x, y = col * stride, -row * stride
    record = {
        "tile_id": f"r{row:05d}_c{col:05d}_abcdef01",
        "row": row,
        "col": col,
        "status": status,
        "changed": int(changed) if status == "ok" else None,
        "bounds": (x, y - size, x + size, y),
    }
    record.update(tile_fields(caption if status == "ok" else None, changed if status == "ok" else None))
    return record


def test_neighbours_of_one_kind_form_one_area_and_other_kinds_or_diagonals_do_not():
    tiles = [
        tile(0, 0, "two houses are built"),
        tile(0, 1, "a house is built"),
        tile(1, 1, "three houses are built"),
        tile(1, 0, "many trees are removed"),
        tile(2, 2, "a house is built"),  # diagonal to (1, 1): its own area
        tile(2, 0, "the scene is the same as before", changed=False),
        tile(2, 1, "x", status="error"),
    ]
    areas = group_areas(tiles)
    assert [(a.change_kind, a.tile_ids, a.n_objects) for a in areas] == [
        (
            "buildings appeared",
            ("r00000_c00000_abcdef01", "r00000_c00001_abcdef01", "r00001_c00001_abcdef01"),
            6,
        ),
        ("vegetation lost", ("r00001_c00000_abcdef01",), None),  # "many trees": no number
        ("buildings appeared", ("r00002_c00002_abcdef01",), 1),
    ]
    assert [a.area_id for a in areas] == [1, 2, 3]
    assert areas[0].record() == {
        "area_id": 1,
        "change_kind": "buildings appeared",
        "n_tiles": 3,
        "n_objects": 6,
        "tile_ids": "r00000_c00000_abcdef01,r00000_c00001_abcdef01,r00001_c00001_abcdef01",
    }


LEFT_CAPTION = "two houses are built on the right side"
RIGHT_CAPTION = "two houses are built on the left side and a house is built on the right side"


def test_overlapping_chips_do_not_count_the_objects_of_the_shared_strip_twice():
    # chips of 100 at a stride of 80: each overlaps its left neighbour by 20
    left = tile(0, 0, LEFT_CAPTION, stride=80)
    right = tile(0, 1, RIGHT_CAPTION, stride=80)
    (area,) = group_areas([left, right])
    assert area.n_objects == 3  # the right tile's two houses on its left may be the left tile's two: counted once
    # the same captions on chips that only touch: nothing is shared, everything counts
    (area,) = group_areas([tile(0, 0, LEFT_CAPTION), tile(0, 1, RIGHT_CAPTION)])
    assert area.n_objects == 5


def test_field_lists_match_their_aliases():
    assert [name for name, _ in AREA_FIELDS] == list(AREA_FIELD_ALIASES)
    assert group_areas([]) == []
