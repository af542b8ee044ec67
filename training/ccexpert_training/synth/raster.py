"""Render a layout to an aerial-like RGB image and a class map.

Texture that belongs to the ground (field patterns, tree crowns, roof colours) comes from the scene's own
random state, so it is identical in both dates; what belongs to the acquisition (sun, haze, season, sensor
noise, parked cars) is drawn per date. Two dates of an unchanged tile therefore differ everywhere in raw
pixels, and "no change" cannot be read off a pixel difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from PIL import Image, ImageFilter
from rasterio import features
from shapely import affinity
from shapely.geometry import LineString, box

from ccexpert_training.maskcaption.facts import CLASS_IDS

from .layout import Layout

BASE_COLOURS = {
    "bareland": (184, 163, 132),
    "grass": (118, 146, 84),
    "forest": (52, 84, 48),
    "water": (46, 72, 88),
    "road": (152, 150, 146),
    "building": (180, 180, 180),
    "parking lot": (98, 98, 100),
}
SEASONS = {  # vegetation colour multipliers per season
    "summer": (np.array([0.95, 1.05, 0.95]), np.array([0.9, 1.05, 0.9])),
    "spring": (np.array([1.0, 1.1, 0.9]), np.array([1.0, 1.1, 0.95])),
    "autumn": (np.array([1.25, 1.08, 0.8]), np.array([1.3, 1.0, 0.75])),
    "dry": (np.array([1.35, 1.15, 0.95]), np.array([1.1, 1.0, 0.85])),
}


@dataclass(frozen=True)
class Acquisition:
    """What changes between two dates of the same ground."""

    gain: float
    cast: tuple[float, float, float]
    gamma: float
    haze: float
    season: str
    sun: tuple[float, float]  # shadow offset in world units (x, y)
    noise: float
    seed: int

    @classmethod
    def random(cls, rng: np.random.Generator) -> Acquisition:
        angle = rng.uniform(0.35, 1.2)
        length = rng.uniform(2.5, 5.5)
        gain = float(rng.uniform(0.78, 1.22))
        red, green, blue = (float(v) for v in rng.uniform(0.92, 1.08, 3))
        return cls(
            gain=gain,
            cast=(red, green, blue),
            gamma=float(rng.uniform(0.85, 1.15)),
            haze=float(rng.uniform(0.0, 0.18)),
            season=str(rng.choice(list(SEASONS))),
            sun=(float(length * np.cos(angle)), float(length * np.sin(angle))),
            noise=float(rng.uniform(2.0, 6.0)),
            seed=int(rng.integers(1 << 31)),
        )


def _transform(lay: Layout, scale: float) -> Affine:
    return Affine(1.0 / scale, 0.0, lay.x0, 0.0, 1.0 / scale, lay.y0)


def _field(seed: int, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1] with about ``cells`` blobs across the image, fixed by ``seed``."""
    small = np.random.default_rng(seed).uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((shape[1], shape[0]), Image.Resampling.BICUBIC))


def class_map(lay: Layout, shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """HxW uint8 class ids (``CLASS_IDS``) of the layout."""
    shapes = [(p.geom, CLASS_IDS[p.cls]) for p in lay.prims if not p.geom.is_empty]
    return (
        features.rasterize(
            shapes, out_shape=shape, transform=_transform(lay, scale), fill=CLASS_IDS[lay.base], dtype="uint8"
        )
        if shapes
        else np.full(shape, CLASS_IDS[lay.base], np.uint8)
    )


def _mask(geoms, lay: Layout, shape: tuple[int, int], scale: float) -> np.ndarray:
    geoms = [g for g in geoms if not g.is_empty]
    if not geoms:
        return np.zeros(shape, bool)
    return features.rasterize(
        ((g, 1) for g in geoms), out_shape=shape, transform=_transform(lay, scale), fill=0, dtype="uint8"
    ).astype(bool)


def render(
    lay: Layout, acq: Acquisition, shape: tuple[int, int], scale: float = 1.0, ground_seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx3 uint8 image, HxW class map) of ``lay`` seen under ``acq``; ``scale`` = pixels per world unit."""
    labels = class_map(lay, shape, scale)
    h, w = shape
    cells = max(4, int(round(w / scale / 32)))
    low = _field(ground_seed, shape, cells)
    fine = _field(ground_seed + 1, shape, max(8, int(round(w / scale / 3))))
    image = np.zeros((h, w, 3), np.float32)
    veg_grass, veg_forest = SEASONS[acq.season]
    for name, cid in CLASS_IDS.items():
        sel = labels == cid
        if not sel.any():
            continue
        colour = np.array(BASE_COLOURS[name], np.float32)
        if name == "grass":
            colour = colour * veg_grass
        elif name == "forest":
            colour = colour * veg_forest
        image[sel] = colour
    # Ground texture: broad variation everywhere, crowns in forests, furrows in grass and bareland.
    image *= (1.0 + 0.08 * low)[..., None]
    forest = labels == CLASS_IDS["forest"]
    image[forest] *= (1.0 + 0.35 * fine[forest])[:, None]
    soft = np.isin(labels, [CLASS_IDS["grass"], CLASS_IDS["bareland"]])
    image[soft] *= (1.0 + 0.06 * fine[soft])[:, None]

    # Roofs: one colour per building, the far half of a gable roof slightly darker; shadows by the sun.
    buildings = [p for p in lay.prims if p.cls == "building"]
    transform = _transform(lay, scale)
    if buildings:
        roof_ids = features.rasterize(
            ((p.geom, i + 1) for i, p in enumerate(buildings)),
            out_shape=shape,
            transform=transform,
            fill=0,
            dtype="int32",
        )
        roofs = np.array([(0, 0, 0)] + [p.style[0] for p in buildings], np.float32)
        built = roof_ids > 0
        halves = []
        for p in buildings:
            x0, y0, x1, y1 = p.geom.bounds
            halves.append(box(x0, y0, x1, (y0 + y1) / 2) if x1 - x0 > y1 - y0 else box(x0, y0, (x0 + x1) / 2, y1))
        dark = _mask(halves, lay, shape, scale) & built
        image[built] = roofs[roof_ids[built]]
        image[dark] *= 0.82
        shadow = _mask([affinity.translate(p.geom, *acq.sun) for p in buildings], lay, shape, scale) & ~built
        image[shadow] *= 0.55

    # Parking lots: stripes are ground; cars come and go between dates.
    lots = [p for p in lay.prims if p.cls == "parking lot"]
    if lots:
        lines, cars = [], []
        car_rng = np.random.default_rng(acq.seed)
        for p in lots:
            x0, y0, x1, y1 = p.geom.bounds
            horizontal = x1 - x0 >= y1 - y0
            for t in np.arange(3.0, (x1 - x0 if horizontal else y1 - y0) - 2, 5.0):
                if horizontal:
                    lines.append(LineString([(x0 + t, y0 + 1), (x0 + t, y1 - 1)]).buffer(0.5))
                else:
                    lines.append(LineString([(x0 + 1, y0 + t), (x1 - 1, y0 + t)]).buffer(0.5))
            for t in np.arange(3.0, (x1 - x0 if horizontal else y1 - y0) - 5, 5.0):
                if car_rng.random() < 0.45:
                    half = (y1 - y0) / 2 if horizontal else (x1 - x0) / 2
                    off = car_rng.uniform(1.5, max(1.6, half - 5.5))
                    cars.append(
                        box(x0 + t + 0.8, y0 + off, x0 + t + 4.2, y0 + off + 4.5)
                        if horizontal
                        else box(x0 + off, y0 + t + 0.8, x0 + off + 4.5, y0 + t + 4.2)
                    )
        lot_mask = labels == CLASS_IDS["parking lot"]
        image[_mask(lines, lay, shape, scale) & lot_mask] = (215, 215, 210)
        car_mask = _mask(cars, lay, shape, scale) & lot_mask
        image[car_mask] = car_rng.uniform(40, 230, 3)

    # Acquisition: sensor noise, illumination, colour cast, gamma, haze, optics blur.
    noise_rng = np.random.default_rng(acq.seed + 7)
    image += noise_rng.normal(0.0, acq.noise, image.shape).astype(np.float32)
    image *= acq.gain * np.array(acq.cast, np.float32)
    image = 255.0 * np.clip(image / 255.0, 0, 1) ** acq.gamma
    image = (1 - acq.haze) * image + acq.haze * 200.0
    out = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6 * scale))
    return np.asarray(out), labels
