"""Georeferenced before/after GeoTIFF scenes with a known layout of changes.

The scene is a mosaic of synthetic tiles of 256 world units (one demo-model training chip), rendered at
1.5 px per unit: 0.5 m pixels, so a 384x384 chip of the service's chip grid (snapped to the raster origin,
no overlap) covers exactly one tile and looks like a training pair as the processor resizes it (256 -> 384).
Roads run across the whole scene; selected tiles get one change each, recorded in a JSON next to the rasters
(pixel box, map box in the scene CRS, chip row/col, facts and reference captions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from shapely.geometry import box

from ccexpert_training.maskcaption.facts import extract_facts
from ccexpert_training.maskcaption.render import render_captions

from .layout import EVENTS, TILE, Layout, Prim, apply_event, make_tile
from .pairs import semantic_change_mask
from .raster import Acquisition, render

PIXEL_SIZE = 0.5  # metres
SCALE = 1.5  # pixels per world unit: tile = 384 px
CHIP = int(TILE * SCALE)
DEFAULT_CRS = "EPSG:32633"  # WGS 84 / UTM zone 33N
DEFAULT_ORIGIN = (399_000.0, 5_700_000.0)  # upper-left corner, metres


def _tile_roads(rng: np.random.Generator, n_tiles: int) -> tuple[list[float], list[float]]:
    """World offsets of the scene-wide roads: about one horizontal and one vertical road per two tiles."""

    def offsets() -> list[float]:
        out, pos = [], rng.uniform(60, 200)
        while pos < n_tiles * TILE - 40:
            out.append(float(pos))
            pos += rng.uniform(300, 560)
        return out

    return offsets(), offsets()


def _scene_layouts(rng: np.random.Generator, n_tiles: int, changed: set[tuple[int, int]]):
    """Before and after layouts of every tile, and the events applied."""
    rows_h, cols_v = _tile_roads(rng, n_tiles)
    width = {o: float(rng.uniform(7, 10)) for o in rows_h + cols_v}
    tiles: dict[tuple[int, int], tuple[Layout, Layout]] = {}
    events: dict[tuple[int, int], str] = {}
    for r in range(n_tiles):
        for c in range(n_tiles):
            x0, y0 = c * TILE, r * TILE
            roads = [("h", y, width[y]) for y in rows_h if y0 + 12 < y < y0 + TILE - 12]
            roads += [("v", x, width[x]) for x in cols_v if x0 + 12 < x < x0 + TILE - 12]
            lay = make_tile(rng, x0, y0, TILE, roads=roads)
            after = lay
            if (r, c) in changed:
                for attempt in range(len(EVENTS) * 2):
                    event = EVENTS[(len(events) + attempt) % len(EVENTS)]
                    candidate = apply_event(rng, lay, event)
                    if candidate is not None:
                        after, events[(r, c)] = candidate, event
                        break
            tiles[(r, c)] = (lay, after)
    return tiles, events


def _merge(tiles: dict, which: int, size_units: float) -> Layout:
    """One layout for the whole scene: each tile's base as a box, then its primitives clipped to the tile."""
    merged = Layout(0.0, 0.0, size_units, base="bareland")
    for (r, c), pair in sorted(tiles.items()):
        lay = pair[which]
        tile_box = box(c * TILE, r * TILE, (c + 1) * TILE, (r + 1) * TILE)
        merged.prims.append(Prim(lay.base, tile_box))
        for p in lay.prims:
            clipped = p.geom.intersection(tile_box)
            if not clipped.is_empty:
                merged.prims.append(Prim(p.cls, clipped if p.cls != "building" else p.geom, p.style))
    return merged


def make_scene_pair(
    out_dir: str | Path,
    size: int = 2048,
    seed: int = 0,
    crs: str = DEFAULT_CRS,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    n_changes: int | None = None,
) -> tuple[Path, Path, Path]:
    """Write ``before.tif``, ``after.tif`` (size x size, 3-band uint8, 0.5 m pixels, ``crs``), a semantic
    change mask ``change_mask.tif`` and ``changes.json``; return (before, after, changes_json) paths.

    ``n_changes`` tiles (default: about a third of the full 384 px tiles, at least one) get one change each.
    Deterministic for a given (size, seed, crs, origin, n_changes).
    """
    if size < CHIP:
        raise ValueError(f"size must be at least {CHIP} px (one {CHIP}x{CHIP} tile), got {size}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 4242])
    n_tiles = -(-size // CHIP)
    full = size // CHIP
    candidates = [(r, c) for r in range(full) for c in range(full)]
    n_changes = max(1, round(len(candidates) / 3)) if n_changes is None else n_changes
    if not 0 <= n_changes <= len(candidates):
        raise ValueError(f"n_changes must be in 0..{len(candidates)} for a {size} px scene, got {n_changes}")
    order = rng.permutation(len(candidates))[:n_changes]
    changed = {candidates[i] for i in sorted(order)}
    tiles, events = _scene_layouts(rng, n_tiles, changed)
    size_units = n_tiles * TILE
    ground_seed = int(rng.integers(1 << 30))
    shape = (size, size)
    acq_before, acq_after = Acquisition.random(rng), Acquisition.random(rng)
    before_img, before_cls = render(_merge(tiles, 0, size_units), acq_before, shape, SCALE, ground_seed)
    after_img, after_cls = render(_merge(tiles, 1, size_units), acq_after, shape, SCALE, ground_seed)
    mask = semantic_change_mask(before_cls, after_cls)

    transform = from_origin(origin[0], origin[1], PIXEL_SIZE, PIXEL_SIZE)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "crs": CRS.from_string(crs),
        "transform": transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "photometric": "RGB",
        "interleave": "pixel",
    }
    paths = {"before": out / "before.tif", "after": out / "after.tif"}
    for (key, path), image, date in zip(
        paths.items(), (before_img, after_img), ("2019-06-01", "2023-08-15"), strict=True
    ):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.moveaxis(image, -1, 0))
            dst.update_tags(
                TIFFTAG_DATETIME=f"{date.replace('-', ':')} 10:30:00",
                ACQUISITION_DATE=date,
                DESCRIPTION=f"ccexpert synthetic scene ({key}), seed {seed}: not real imagery",
            )
    mask_profile = {**profile, "count": 1, "photometric": "MINISBLACK"}
    with rasterio.open(out / "change_mask.tif", "w", **mask_profile) as dst:
        dst.write(mask[None])

    changes: list[dict[str, Any]] = []
    for (r, c), event in sorted(events.items()):
        rows, cols = slice(r * CHIP, (r + 1) * CHIP), slice(c * CHIP, (c + 1) * CHIP)
        tile_mask = mask[rows, cols]
        facts = extract_facts(tile_mask > 0, before_cls[rows, cols], after_cls[rows, cols])
        if not facts.changed:
            continue
        ys, xs = np.nonzero(tile_mask)
        px_box = [
            int(c * CHIP + xs.min()),
            int(r * CHIP + ys.min()),
            int(c * CHIP + xs.max() + 1),
            int(r * CHIP + ys.max() + 1),
        ]
        xmin, ymax = transform @ (px_box[0], px_box[1])
        xmax, ymin = transform @ (px_box[2], px_box[3])
        changes.append(
            {
                "id": f"change_{len(changes) + 1:02d}",
                "event": event,
                "chip": {"row": r, "col": c, "size": CHIP},
                "pixel_box": px_box,
                "map_box": [xmin, ymin, xmax, ymax],
                "center": [(xmin + xmax) / 2, (ymin + ymax) / 2],
                "facts": facts.to_dict()["facts"],
                "captions": render_captions(facts),
            }
        )
    changes_path = out / "changes.json"
    changes_path.write_text(
        json.dumps(
            {
                "description": "Synthetic before/after scene generated by ccexpert_training.synth.make_scene_pair; "
                "procedural imagery, not a real place.",
                "seed": seed,
                "size": size,
                "crs": crs,
                "pixel_size": PIXEL_SIZE,
                "transform": list(transform)[:6],
                "bounds": [origin[0], origin[1] - size * PIXEL_SIZE, origin[0] + size * PIXEL_SIZE, origin[1]],
                "chip_size": CHIP,
                "before": paths["before"].name,
                "after": paths["after"].name,
                "change_mask": "change_mask.tif",
                "changed_chips": [[ch["chip"]["row"], ch["chip"]["col"]] for ch in changes],
                "changes": changes,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return paths["before"], paths["after"], changes_path
