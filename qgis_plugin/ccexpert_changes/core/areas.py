"""Change areas: adjacent or overlapping changed tiles of one ``change_kind`` grouped into one area (issue 27).

An analyst asking "where were buildings demolished" wants one polygon per site, not the nine tiles it spans. This
module does the grouping (stdlib, shared by the plugin and ``ccexpert describe``); the adapters union the tiles'
polygons (QGIS in the plugin, shapely in describe) and write layer ``change_areas`` next to ``change_captions``.

Rules:
- members: tiles with status ``ok``, ``changed`` = 1 and a ``change_kind``; two members join when they share the
  kind and are grid neighbours (same row, next column, or same column, next row); groups are the connected parts;
- objects are not counted twice where chips overlap (an ``overlap`` setting, or the last chip of a row or column that
  is moved inward): a tile's fact whose cells all lie on the side facing an earlier neighbour of the same area
  (its left column when the tile overlaps its left neighbour, its top row when it overlaps the one above) may be the
  very objects that neighbour reported, and is left out of the area's ``n_objects``. Without overlap every fact
  counts. ``n_objects`` is NULL when a counted fact has no number ("several houses").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .facts import MASS_NOUNS

AREAS_LAYER_NAME = "change_areas"
# (name, type) in layer order, types as core.fields.FIELDS
AREA_FIELDS: tuple[tuple[str, str], ...] = (
    ("area_id", "int"),
    ("change_kind", "str"),
    ("n_tiles", "int"),
    ("n_objects", "int"),
    ("tile_ids", "str"),
)
AREA_FIELD_ALIASES: dict[str, str] = {
    "area_id": "Area",
    "change_kind": "Kind of change",
    "n_tiles": "Tiles",
    "n_objects": "Number of objects",
    "tile_ids": "Tiles (ids)",
}
AREAS_STYLE = Path(__file__).resolve().parents[1] / "styles" / "change_areas.qml"


def areas_style() -> str:
    """The shipped QML of layer change_areas (tints and outlines by kind of change, as the tiles), stored as the
    layer's default style by both writers so the areas open styled anywhere."""
    return AREAS_STYLE.read_text(encoding="utf-8")


_LEFT = frozenset({"top_left", "left", "bottom_left"})
_TOP = frozenset({"top_left", "top", "top_right"})


@dataclass(frozen=True)
class Area:
    """One group: its kind, member tile ids in grid order, and the objects counted once."""

    area_id: int
    change_kind: str
    tile_ids: tuple[str, ...]
    n_objects: int | None

    def record(self) -> dict[str, Any]:
        return {
            "area_id": self.area_id,
            "change_kind": self.change_kind,
            "n_tiles": len(self.tile_ids),
            "n_objects": self.n_objects,
            "tile_ids": ",".join(self.tile_ids),
        }


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two (xmin, ymin, xmax, ymax) boxes share an area (touching edges do not)."""
    return min(a[2], b[2]) - max(a[0], b[0]) > 1e-9 and min(a[3], b[3]) - max(a[1], b[1]) > 1e-9


def _facts(tile: Mapping[str, Any]) -> list[dict]:
    try:
        facts = json.loads(tile.get("facts") or "[]")
    except ValueError:
        return []
    return [f for f in facts if isinstance(f, dict)]


def _counted(facts: Iterable[dict], skip_cells: frozenset[str]) -> int | None:
    """Objects of a tile's facts, leaving out those whose cells all lie in ``skip_cells``; None when one is unknown."""
    total = 0
    for fact in facts:
        where = set(fact.get("where") or ())
        if skip_cells and where and where <= skip_cells:
            continue
        count = fact.get("count")
        if isinstance(count, int):
            total += count
        elif fact.get("quantity") is not None or fact.get("word") not in MASS_NOUNS:
            return None
    return total


def _seen(tile: Mapping[str, Any]) -> Sequence[float]:
    """What the model saw of a tile: its chip when known, else its polygon's bounds."""
    return tile.get("chip_bounds") or tile["bounds"]


def group_areas(tiles: Iterable[Mapping[str, Any]]) -> list[Area]:
    """Areas of changed tiles: records with ``tile_id``, ``row``, ``col``, ``status``, ``changed``, ``change_kind``,
    ``facts`` and ``bounds`` (xmin, ymin, xmax, ymax in the layer's CRS), in any order; ``chip_bounds`` when
    known: the whole chip the model saw (the polygons are the parts the tiles own, which never overlap, so the
    overlap that makes two chips report the same objects is read from the chips). Areas come in grid order of
    their first tile; ``area_id`` counts from 1."""
    members = {
        (int(t["row"]), int(t["col"])): t
        for t in tiles
        if t.get("status") == "ok" and t.get("changed") in (1, True) and t.get("change_kind")
    }
    parent = {cell: cell for cell in members}

    def find(cell: tuple[int, int]) -> tuple[int, int]:
        while parent[cell] != cell:
            parent[cell] = parent[parent[cell]]
            cell = parent[cell]
        return cell

    for (row, col), tile in members.items():
        for neighbour in ((row, col + 1), (row + 1, col)):
            other = members.get(neighbour)
            if other is not None and other["change_kind"] == tile["change_kind"]:
                a, b = find((row, col)), find(neighbour)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for cell in sorted(members):
        groups.setdefault(find(cell), []).append(cell)
    areas = []
    for number, root in enumerate(sorted(groups), start=1):
        cells = groups[root]
        inside = set(cells)
        total: int | None = 0
        for row, col in cells:
            tile = members[(row, col)]
            skip: set[str] = set()
            left, above = (row, col - 1), (row - 1, col)
            if left in inside and _overlaps(_seen(members[left]), _seen(tile)):
                skip |= _LEFT
            if above in inside and _overlaps(_seen(members[above]), _seen(tile)):
                skip |= _TOP
            counted = _counted(_facts(tile), frozenset(skip))
            total = None if total is None or counted is None else total + counted
        kind = str(members[root]["change_kind"])
        areas.append(Area(number, kind, tuple(str(members[c]["tile_id"]) for c in cells), total))
    return areas
