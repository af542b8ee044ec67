"""Change facts from a change mask: what changed, how many, where, how big, and how.

Both seed systems (CCExpert's CC-Foundation, RSICCLLM's RSICI) caption change-detection sets by giving a
writer the change mask as a geometric prior. We make the prior explicit: connected components of the mask
become counted objects, their centroids fall on a 3x3 grid (the "top left ... center ... bottom right" of
LEVIR-CC captions), and, when semantic before/after class maps are known, each component's majority
before/after class tells appear / disappear / replace and what was replaced.

Connected components come from ``rasterio.features.shapes`` (GDAL polygonize, 8-connectivity), so no
extra image library is needed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rasterio import features
from shapely.geometry import shape

# Semantic class ids shared by the synthetic generator and semantic change masks (0 = no change / unlabelled).
CLASS_NAMES: dict[int, str] = {
    1: "bareland",
    2: "grass",
    3: "forest",
    4: "water",
    5: "road",
    6: "building",
    7: "parking lot",
}
CLASS_IDS: dict[str, int] = {name: idx for idx, name in CLASS_NAMES.items()}
# Land cover that "holds" objects: an object built on it appears, an object removed leaves it behind.
LAND_COVER = frozenset({"bareland", "grass", "forest"})
OBJECTS = frozenset({"water", "road", "building", "parking lot"})
# What a caption can say appeared or disappeared (bareland is what is left, never the subject).
CHANGE_CLASSES = OBJECTS | {"forest", "grass"}
KINDS = ("appear", "disappear", "replace")

GRID_NAMES: tuple[tuple[str, str, str], ...] = (
    ("top left", "top", "top right"),
    ("left", "center", "right"),
    ("bottom left", "bottom", "bottom right"),
)


@dataclass(frozen=True)
class ChangeFact:
    """One kind of change of one class, aggregated over its connected components.

    ``location`` is a 3x3 grid name, or ``""`` when the components spread over the scene.
    ``replaced`` is what the changed object replaced (appear/replace: the class that was there before) or
    what it left behind (disappear: the class that is there after), when semantic maps were given.
    """

    cls: str
    kind: str
    count: int
    location: str
    size: str
    area_fraction: float
    replaced: str | None = None

    def __post_init__(self) -> None:
        if self.cls not in CHANGE_CLASSES:
            raise ValueError(f"unknown changed class {self.cls!r}; expected one of {sorted(CHANGE_CLASSES)}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown change kind {self.kind!r}; expected one of {KINDS}")
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if self.location and self.location not in {n for row in GRID_NAMES for n in row}:
            raise ValueError(f"unknown location {self.location!r}")

    def to_dict(self) -> dict:
        return {
            "cls": self.cls,
            "kind": self.kind,
            "count": self.count,
            "location": self.location,
            "size": self.size,
            "area_fraction": round(self.area_fraction, 6),
            "replaced": self.replaced,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ChangeFact:
        return cls(
            cls=data["cls"],
            kind=data["kind"],
            count=int(data["count"]),
            location=data.get("location", ""),
            size=data.get("size", "medium"),
            area_fraction=float(data.get("area_fraction", 0.0)),
            replaced=data.get("replaced"),
        )


@dataclass(frozen=True)
class ChangeFacts:
    """All facts of one pair, largest change first. No facts = no change."""

    facts: tuple[ChangeFact, ...] = field(default_factory=tuple)
    changed_fraction: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.facts)

    def to_dict(self) -> dict:
        return {
            "changed": self.changed,
            "changed_fraction": round(self.changed_fraction, 6),
            "facts": [f.to_dict() for f in self.facts],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ChangeFacts:
        return cls(
            tuple(ChangeFact.from_dict(f) for f in data.get("facts", ())), float(data.get("changed_fraction", 0.0))
        )


def grid_location(row: float, col: float, height: int, width: int) -> str:
    """The 3x3 grid cell name of a point given in pixel coordinates (row, col)."""
    r = min(2, max(0, int(3 * row / height)))
    c = min(2, max(0, int(3 * col / width)))
    return GRID_NAMES[r][c]


def size_name(area_fraction: float) -> str:
    """Coarse size of a change relative to the scene (thresholds fit 256x256 LEVIR-CC-like chips)."""
    if area_fraction < 0.01:
        return "small"
    if area_fraction < 0.08:
        return "medium"
    return "large"


def _group_location(centroids: Sequence[tuple[float, float]], height: int, width: int) -> str:
    """One cell when all components share it; a side ("top", "left", ...) when they share a row or a column
    at the border; else the cell of the overall centroid if it is compact, else ``""`` (spread out)."""
    cells = {(min(2, int(3 * r / height)), min(2, int(3 * c / width))) for r, c in centroids}
    if len(cells) == 1:
        r, c = next(iter(cells))
        return GRID_NAMES[r][c]
    rows = {r for r, _ in cells}
    cols = {c for _, c in cells}
    if len(rows) == 1 and next(iter(rows)) != 1:
        return GRID_NAMES[next(iter(rows))][1]
    if len(cols) == 1 and next(iter(cols)) != 1:
        return GRID_NAMES[1][next(iter(cols))]
    return ""


def _classify(
    before: str | None, after: str | None, default_cls: str, default_kind: str
) -> tuple[str, str, str | None]:
    """(class, kind, replaced) of one component from its majority before/after classes."""
    if before is None or after is None or before == after:
        return default_cls, default_kind, None
    if before == "bareland":
        return after, "appear", before
    if after == "bareland":
        return before, "disappear", after
    if before in LAND_COVER and after in LAND_COVER:
        # grass <-> forest: trees planted or cleared; the forest is the object that comes or goes.
        return ("forest", "appear", before) if after == "forest" else ("forest", "disappear", after)
    if before in LAND_COVER:
        return after, "appear", before
    if after in LAND_COVER:
        return before, "disappear", after
    return after, "replace", before


def _as_mask(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D mask, got shape {array.shape}")
    return array


def extract_facts(
    change: np.ndarray,
    before_labels: np.ndarray | None = None,
    after_labels: np.ndarray | None = None,
    *,
    cls: str = "building",
    kind: str = "appear",
    min_area_fraction: float = 0.0005,
) -> ChangeFacts:
    """Facts of one pair.

    ``change``: HxW mask, nonzero = changed (a binary 0/255 mask, or a semantic mask of class ids).
    ``before_labels`` / ``after_labels``: optional HxW class-id maps (``CLASS_IDS``); when both are given
    each component gets its class, kind and replaced class from their majority inside it. Without them
    every component is ``cls`` with ``kind`` (LEVIR-CD masks are building changes, mostly construction).
    When ``change`` itself holds class ids (values in ``CLASS_NAMES``) and no maps are given, the class of
    each component is its mask value.
    Components smaller than ``min_area_fraction`` of the image are ignored as annotation noise.
    """
    if cls not in CHANGE_CLASSES:
        raise ValueError(f"unknown changed class {cls!r}; expected one of {sorted(CHANGE_CLASSES)}")
    if kind not in KINDS:
        raise ValueError(f"unknown change kind {kind!r}; expected one of {KINDS}")
    change = _as_mask(change, "change mask")
    height, width = change.shape
    for name, labels in (("before labels", before_labels), ("after labels", after_labels)):
        if labels is not None and _as_mask(labels, name).shape != change.shape:
            raise ValueError(f"{name}: shape {np.shape(labels)} does not match the change mask {change.shape}")
    semantic_mask = (
        before_labels is None
        and set(np.unique(change).tolist()) - {0} <= set(CLASS_NAMES)
        and not set(np.unique(change).tolist()) <= {0, 1}
    )
    binary = (change > 0).astype(np.uint8)
    if not binary.any():
        return ChangeFacts((), 0.0)

    # Connected components (8-connectivity) as polygons; a semantic mask splits components by class value.
    source = change.astype(np.uint8) if semantic_mask else binary
    comps = [
        (shape(geom), int(value)) for geom, value in features.shapes(source, mask=binary.astype(bool), connectivity=8)
    ]
    ids = features.rasterize(
        ((g, i + 1) for i, (g, _) in enumerate(comps)), out_shape=change.shape, fill=0, dtype="int32"
    )
    min_area = min_area_fraction * height * width
    before_map = _as_mask(before_labels, "before labels") if before_labels is not None else None
    after_map = _as_mask(after_labels, "after labels") if after_labels is not None else None

    groups: dict[tuple[str, str, str | None], list[tuple[float, tuple[float, float]]]] = defaultdict(list)
    for index, (_geom, value) in enumerate(comps, start=1):
        rows, cols = np.nonzero(ids == index)
        area = float(rows.size)
        if area < min_area:
            continue
        before = after = None
        if before_map is not None and after_map is not None:
            before = CLASS_NAMES.get(Counter(before_map[rows, cols].tolist()).most_common(1)[0][0])
            after = CLASS_NAMES.get(Counter(after_map[rows, cols].tolist()).most_common(1)[0][0])
        comp_cls = CLASS_NAMES[value] if semantic_mask else cls
        key = _classify(before, after, comp_cls, kind)
        groups[key].append((area, (float(rows.mean()) + 0.5, float(cols.mean()) + 0.5)))

    total = float(height * width)
    facts = []
    for (fact_cls, fact_kind, replaced), items in groups.items():
        area = sum(a for a, _ in items)
        facts.append(
            ChangeFact(
                cls=fact_cls,
                kind=fact_kind,
                count=len(items),
                location=_group_location([c for _, c in items], height, width),
                size=size_name(area / total),
                area_fraction=area / total,
                replaced=replaced,
            )
        )
    facts.sort(key=lambda f: -f.area_fraction)
    changed_fraction = sum(f.area_fraction for f in facts)
    return ChangeFacts(tuple(facts), changed_fraction)
