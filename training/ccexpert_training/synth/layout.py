"""Procedural layouts of aerial-like tiles and the changes applied to them.

A layout is an ordered list of primitives (class, shapely geometry in world units, style) painted in order,
later over earlier. One world unit is one pixel of a 256x256 training chip (0.75 m on the ground); the same
layout can be rendered at any scale, which is how the GeoTIFF scenes (0.5 m pixels) reuse the generator.

Changes follow what LEVIR-CC describes: houses built or demolished, roads built, trees cleared, a pond
filled, a parking lot built. Every change is kept inside one 3x3 cell of its tile (roads: one band) so that
the facts read back from the masks have a single, well-defined place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

TILE = 256.0
ROOF_COLOURS = (
    (168, 84, 62),
    (150, 70, 55),
    (74, 104, 150),
    (206, 206, 202),
    (232, 230, 222),
    (92, 92, 98),
    (186, 150, 110),
)
EVENTS = ("build_houses", "demolish_houses", "build_road", "clear_forest", "fill_pond", "build_lot")
EVENT_WEIGHTS = (0.34, 0.16, 0.15, 0.15, 0.08, 0.12)


@dataclass(frozen=True)
class Prim:
    """One painted primitive. ``style`` carries what the renderer needs: roof colour, car seed."""

    cls: str
    geom: BaseGeometry
    style: tuple = ()


@dataclass
class Layout:
    """A tile: origin and size in world units, the base land cover and the primitives in paint order."""

    x0: float
    y0: float
    size: float
    base: str
    prims: list[Prim] = field(default_factory=list)

    def copy(self) -> Layout:
        return replace(self, prims=list(self.prims))

    def solid(self) -> BaseGeometry:
        """Everything a new object must not overlap (roads, water, lots, buildings)."""
        shapes = [p.geom for p in self.prims if p.cls in ("road", "water", "parking lot", "building")]
        return unary_union(shapes) if shapes else Polygon()

    def cell_box(self, row: int, col: int, margin: float = 6.0) -> tuple[float, float, float, float]:
        step = self.size / 3
        return (
            self.x0 + col * step + margin,
            self.y0 + row * step + margin,
            self.x0 + (col + 1) * step - margin,
            self.y0 + (row + 1) * step - margin,
        )

    def cell_of(self, geom: BaseGeometry) -> tuple[int, int]:
        c = geom.centroid
        step = self.size / 3
        return (min(2, int((c.y - self.y0) // step)), min(2, int((c.x - self.x0) // step)))


def _blob(rng: np.random.Generator, cx: float, cy: float, radius: float) -> Polygon:
    angles = np.sort(rng.uniform(0, 2 * math.pi, 12))
    radii = radius * rng.uniform(0.65, 1.25, 12)
    return Polygon(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles), strict=True)).buffer(radius * 0.15)


def _house(rng: np.random.Generator, cx: float, cy: float, scale: float = 1.0) -> Prim:
    w, h = rng.uniform(16, 26) * scale, rng.uniform(13, 20) * scale
    if rng.random() < 0.5:
        w, h = h, w
    roof = ROOF_COLOURS[int(rng.integers(len(ROOF_COLOURS)))]
    return Prim("building", box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), (roof,))


def _road(orientation: str, offset: float, width: float, lay: Layout) -> Prim:
    if orientation == "h":
        line = LineString([(lay.x0 - 2, offset), (lay.x0 + lay.size + 2, offset)])
    else:
        line = LineString([(offset, lay.y0 - 2), (offset, lay.y0 + lay.size + 2)])
    return Prim("road", line.buffer(width / 2, cap_style="flat"), (orientation, offset))


def _free(lay: Layout, geom: BaseGeometry, gap: float = 3.0) -> bool:
    inside = box(lay.x0 + 1, lay.y0 + 1, lay.x0 + lay.size - 1, lay.y0 + lay.size - 1).contains(geom)
    return inside and not lay.solid().intersects(geom.buffer(gap))


def _place(
    rng: np.random.Generator,
    lay: Layout,
    make,
    region: tuple[float, float, float, float],
    tries: int = 40,
    gap: float = 3.0,
) -> Prim | None:
    x0, y0, x1, y1 = region
    for _ in range(tries):
        prim = make(rng.uniform(x0, x1), rng.uniform(y0, y1))
        if _free(lay, prim.geom, gap) and box(*region).buffer(4).contains(prim.geom):
            return prim
    return None


def roads_of(lay: Layout) -> list[tuple[str, float]]:
    return [p.style for p in lay.prims if p.cls == "road"]


def make_tile(
    rng: np.random.Generator,
    x0: float = 0.0,
    y0: float = 0.0,
    size: float = TILE,
    roads: list[tuple[str, float, float]] | None = None,
) -> Layout:
    """A random unchanged tile. ``roads`` (orientation, offset, width) imposes roads (scenes share roads
    across tiles); otherwise 0-2 roads are drawn."""
    lay = Layout(x0, y0, size, base=str(rng.choice(["bareland", "grass"], p=[0.55, 0.45])))
    for _ in range(int(rng.integers(1, 4))):
        cls = str(rng.choice(["forest", "grass", "bareland", "forest"]))
        if cls != lay.base:
            lay.prims.append(
                Prim(
                    cls,
                    _blob(rng, x0 + rng.uniform(20, size - 20), y0 + rng.uniform(20, size - 20), rng.uniform(22, 55)),
                )
            )
    if roads is None:
        roads = []
        n_roads = int(rng.choice([0, 1, 1, 2]))
        orientations = ["h", "v"] if n_roads == 2 else [str(rng.choice(["h", "v"]))] * n_roads
        for orientation in orientations:
            base = y0 if orientation == "h" else x0
            roads.append((orientation, base + rng.uniform(45, size - 45), rng.uniform(7, 10)))
    for orientation, offset, width in roads:
        lay.prims.append(_road(orientation, offset, width, lay))
    if rng.random() < 0.22:
        pond = _place(
            rng,
            lay,
            lambda x, y: Prim(
                "water", affinity.scale(Point(x, y).buffer(1.0), rng.uniform(12, 24), rng.uniform(10, 20))
            ),
            (x0 + 30, y0 + 30, x0 + size - 30, y0 + size - 30),
            gap=6,
        )
        if pond:
            lay.prims.append(pond)
    if rng.random() < 0.2:
        lot = _place(rng, lay, lambda x, y: _lot(rng, x, y), (x0 + 25, y0 + 25, x0 + size - 25, y0 + size - 25))
        if lot:
            lay.prims.append(lot)
    # Houses: rows along the roads, then a few scattered ones.
    for orientation, offset, width in roads:
        side_offsets = (-(width / 2 + 17), width / 2 + 17)
        for side in side_offsets:
            if rng.random() < 0.35:
                continue
            pos = (x0 if orientation == "h" else y0) + rng.uniform(4, 30)
            end = (x0 if orientation == "h" else y0) + size - 14
            while pos < end:
                cx, cy = (pos, offset + side) if orientation == "h" else (offset + side, pos)
                house = _house(rng, cx, cy)
                if _free(lay, house.geom):
                    lay.prims.append(house)
                pos += rng.uniform(32, 50)
    for _ in range(int(rng.integers(0, 4))):
        placed = _place(rng, lay, lambda x, y: _house(rng, x, y), (x0 + 12, y0 + 12, x0 + size - 12, y0 + size - 12))
        if placed:
            lay.prims.append(placed)
    return lay


def _lot(rng: np.random.Generator, cx: float, cy: float) -> Prim:
    w, h = rng.uniform(34, 52), rng.uniform(22, 34)
    if rng.random() < 0.5:
        w, h = h, w
    return Prim("parking lot", box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), (int(rng.integers(1 << 30)),))


# --- changes ---------------------------------------------------------------------------------------------------


def _cells(rng: np.random.Generator) -> list[tuple[int, int]]:
    cells = [(r, c) for r in range(3) for c in range(3)]
    rng.shuffle(cells)
    return cells


def _build_houses(rng: np.random.Generator, lay: Layout) -> Layout | None:
    count = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    for row, col in _cells(rng):
        after = lay.copy()
        region = lay.cell_box(row, col)
        for _ in range(count):
            house = _place(rng, after, lambda x, y: _house(rng, x, y), region, gap=4)
            if house is None:
                break
            after.prims.append(house)
        else:
            return after
    return None


def _demolish_houses(rng: np.random.Generator, lay: Layout) -> Layout | None:
    by_cell: dict[tuple[int, int], list[int]] = {}
    for i, p in enumerate(lay.prims):
        if p.cls == "building":
            by_cell.setdefault(lay.cell_of(p.geom), []).append(i)
    if not by_cell:
        return None
    cells = list(by_cell)
    cell = cells[int(rng.integers(len(cells)))]
    indices = by_cell[cell]
    count = min(len(indices), int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2])))
    drop = set(rng.choice(indices, size=count, replace=False).tolist())
    after = lay.copy()
    after.prims = [p for i, p in enumerate(lay.prims) if i not in drop]
    return after


def _build_road(rng: np.random.Generator, lay: Layout) -> Layout | None:
    existing = roads_of(lay)
    orientations = {o for o, _ in existing}
    if len(orientations) > 1:
        return None
    orientation = next(iter(orientations)) if orientations else str(rng.choice(["h", "v"]))
    base = lay.y0 if orientation == "h" else lay.x0
    bands = [0, 1, 2]
    rng.shuffle(bands)
    for band in bands:
        for _ in range(10):
            offset = base + lay.size / 3 * (band + rng.uniform(0.3, 0.7))
            if any(abs(offset - o) < 30 for _, o in existing):
                continue
            road = _road(orientation, offset, rng.uniform(7, 10), lay)
            if not lay.solid().intersects(road.geom.buffer(2)):
                after = lay.copy()
                after.prims.insert(_first_object_index(lay), road)
                return after
    return None


def _first_object_index(lay: Layout) -> int:
    """Roads are painted under every object and over land cover."""
    for i, p in enumerate(lay.prims):
        if p.cls != "forest" and p.cls not in ("grass", "bareland"):
            return i
    return len(lay.prims)


def _clear_forest(rng: np.random.Generator, lay: Layout) -> Layout | None:
    patches = [i for i, p in enumerate(lay.prims) if p.cls == "forest"]
    if not patches:
        return None
    drop = patches[int(rng.integers(len(patches)))]
    after = lay.copy()
    after.prims = [p for i, p in enumerate(lay.prims) if i != drop]
    return after


def _fill_pond(rng: np.random.Generator, lay: Layout) -> Layout | None:
    ponds = [i for i, p in enumerate(lay.prims) if p.cls == "water"]
    if not ponds:
        return None
    after = lay.copy()
    after.prims = [p for i, p in enumerate(lay.prims) if i != ponds[0]]
    return after


def _build_lot(rng: np.random.Generator, lay: Layout) -> Layout | None:
    for row, col in _cells(rng):
        lot = _place(rng, lay, lambda x, y: _lot(rng, x, y), lay.cell_box(row, col, margin=2), gap=4)
        if lot:
            after = lay.copy()
            after.prims.append(lot)
            return after
    return None


_EVENT_FUNCS = {
    "build_houses": _build_houses,
    "demolish_houses": _demolish_houses,
    "build_road": _build_road,
    "clear_forest": _clear_forest,
    "fill_pond": _fill_pond,
    "build_lot": _build_lot,
}


def apply_event(rng: np.random.Generator, lay: Layout, event: str) -> Layout | None:
    """The layout after ``event``, or None when this tile offers no place for it."""
    return _EVENT_FUNCS[event](rng, lay)


def random_change(rng: np.random.Generator, lay: Layout, n_events: int = 1) -> tuple[Layout, list[str]]:
    """Apply ``n_events`` random events (retrying other kinds when a tile has no room for one)."""
    after = lay
    done: list[str] = []
    for _ in range(n_events):
        order = list(rng.choice(EVENTS, size=len(EVENTS), replace=False, p=EVENT_WEIGHTS))
        for event in order:
            if event in done:
                continue
            changed = apply_event(rng, after, str(event))
            if changed is not None:
                after, done = changed, [*done, str(event)]
                break
    return after, done
