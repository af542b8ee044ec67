"""Change-detection sets (before / after / change label) -> training records with captions from the masks.

This is how both seed systems got most of their caption data: CC-Foundation and RSICI caption LEVIR-CD,
SYSU-CD and SECOND from their change masks. Supported layouts (optionally under train/val/test folders):

- LEVIR-CD style: ``A/``, ``B/``, ``label/`` (binary mask, 0/255 or 0/1);
- SYSU-CD style: ``time1/``, ``time2/``, ``label/``;
- SECOND style: ``im1/``, ``im2/``, ``label1/``, ``label2/`` (colour-coded semantic maps of each date; white =
  no change), which give class, appear/disappear/replace and what was replaced.

Images may be PNG/JPEG/TIFF/GeoTIFF; everything is read with rasterio. Sources that are not 8-bit 3-band PNG or
JPEG (GeoTIFF, 16-bit, 4-band) are converted to 8-bit RGB PNGs under the output folder, because training reads
images with PIL. Binary masks carry no class: every change is ``cls`` with ``kind`` (LEVIR-CD: buildings,
mostly new construction -> the defaults).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning

from .maskcaption.facts import CLASS_IDS, extract_facts
from .maskcaption.gates import check_caption
from .maskcaption.render import render_captions

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
LAYOUTS: dict[str, tuple[str, ...]] = {
    "levircd": ("A", "B", "label"),
    "sysucd": ("time1", "time2", "label"),
    "second": ("im1", "im2", "label1", "label2"),
}
# SECOND colour legend -> our classes (playground: open ground).
SECOND_COLOURS: dict[tuple[int, int, int], str | None] = {
    (255, 255, 255): None,
    (0, 128, 0): "grass",
    (128, 128, 128): "bareland",
    (0, 255, 0): "forest",
    (0, 0, 255): "water",
    (128, 0, 0): "building",
    (255, 0, 0): "bareland",
}


class BuildError(ValueError):
    """A change-detection folder that cannot be turned into records; the message names the file."""


@dataclass(frozen=True)
class SourcePair:
    name: str
    before: Path
    after: Path
    labels: tuple[Path, ...]  # one binary mask, or the two SECOND semantic maps
    split: str


def detect_layout(root: Path) -> tuple[str, list[tuple[str, Path]]]:
    """(layout name, [(split, folder)]) of a change-detection set; splits are "" when the set is not split."""
    root = Path(root)
    if not root.is_dir():
        raise BuildError(f"{root}: not a folder")
    candidates = [("", root)] + [(d.name, d) for d in sorted(root.iterdir()) if d.is_dir()]
    for name, folders in LAYOUTS.items():
        found = [(split, d) for split, d in candidates if all((d / f).is_dir() for f in folders)]
        if found:
            return name, found
    raise BuildError(
        f"{root}: no change-detection layout found; expected sub-folders "
        + " or ".join("/".join(f) for f in LAYOUTS.values())
        + " (optionally under train/val/test)"
    )


def iter_source_pairs(root: Path, layout: str | None = None) -> Iterator[SourcePair]:
    """Every pair of the set, sorted by split and name. A before image without its after image or label is an
    error naming the missing file."""
    detected, splits = detect_layout(root)
    layout = layout or detected
    if layout not in LAYOUTS:
        raise BuildError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUTS)}")
    folders = LAYOUTS[layout]
    for split, base in splits:
        before_dir = base / folders[0]
        names = sorted(p.name for p in before_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not names:
            raise BuildError(f"{before_dir}: no images")
        for name in names:
            paths = [base / folder / name for folder in folders]
            for i, path in enumerate(paths[1:], start=1):
                if not path.is_file():
                    alt = [p for p in path.parent.glob(Path(name).stem + ".*") if p.suffix.lower() in IMAGE_SUFFIXES]
                    if not alt:
                        raise BuildError(f"{paths[0]}: no matching {folders[i]} file {path}")
                    paths[i] = alt[0]
            yield SourcePair(Path(name).stem, paths[0], paths[1], tuple(paths[2:]), split)


def read_raster(path: Path) -> np.ndarray:
    """HxWxC array of any raster GDAL reads (PNG, JPEG, GeoTIFF, ...)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                data = src.read()
    except rasterio.errors.RasterioIOError as exc:
        raise BuildError(f"{path}: cannot read raster ({exc})") from exc
    return np.moveaxis(data, 0, -1)


def to_rgb8(image: np.ndarray, path: Path) -> np.ndarray:
    """8-bit RGB: first three bands (grey is repeated); other dtypes are stretched on their 2-98 percentiles."""
    if image.ndim != 3 or image.shape[2] < 1:
        raise BuildError(f"{path}: expected an image with bands, got shape {image.shape}")
    if image.shape[2] < 3:
        image = np.repeat(image[..., :1], 3, axis=2)
    image = image[..., :3]
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    data = image.astype(np.float64)
    lo, hi = np.percentile(data, 2), np.percentile(data, 98)
    scaled = (data - lo) / max(hi - lo, 1e-9)
    return (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8)


def binary_mask(label: np.ndarray, path: Path) -> np.ndarray:
    """Changed = any nonzero value of the first band."""
    if label.ndim == 3:
        label = label[..., 0]
    if label.ndim != 2:
        raise BuildError(f"{path}: expected a single-band mask, got shape {label.shape}")
    return label > 0


def second_classes(label: np.ndarray, path: Path) -> np.ndarray:
    """SECOND colour map -> class ids (0 = no change)."""
    if label.ndim != 3 or label.shape[2] < 3:
        raise BuildError(f"{path}: expected an RGB SECOND label map, got shape {label.shape}")
    out = np.zeros(label.shape[:2], np.uint8)
    known = np.zeros(label.shape[:2], bool)
    for colour, cls in SECOND_COLOURS.items():
        hit = np.all(label[..., :3] == colour, axis=-1)
        known |= hit
        if cls:
            out[hit] = CLASS_IDS[cls]
    if not known.all():
        bad = label[~known][0][:3].tolist()
        raise BuildError(f"{path}: colour {bad} is not in the SECOND legend {sorted(SECOND_COLOURS)}")
    return out


@dataclass
class BuildStats:
    pairs: int = 0
    changed: int = 0
    converted_images: int = 0
    rejected_captions: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def build_records(
    root: str | Path,
    out_jsonl: str | Path,
    *,
    layout: str | None = None,
    cls: str = "building",
    kind: str = "appear",
    min_area_fraction: float = 0.0005,
    uid_prefix: str | None = None,
    rewrite=None,
    progress=None,
) -> BuildStats:
    """Write one record per pair of ``root`` to ``out_jsonl`` (paths relative to it); return counts.

    ``rewrite`` is an optional ``maskcaption.rewrite.RewriteConfig``: captions are then rewritten by that chat
    endpoint (gated, topped up with the templates). Images and masks that training cannot read directly are
    written under ``<out_jsonl stem>_files/``.
    """
    root, out_jsonl = Path(root), Path(out_jsonl)
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    files_dir = out_jsonl.parent / f"{out_jsonl.stem}_files"
    prefix = uid_prefix if uid_prefix is not None else root.name
    stats = BuildStats()
    tmp = out_jsonl.with_suffix(out_jsonl.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for pair in iter_source_pairs(root, layout):
            uid = "_".join(p for p in (prefix, pair.split, pair.name) if p)
            images: dict[str, np.ndarray] = {}
            image_paths: dict[str, Path] = {}  # what the record names: the source, or its RGB copy
            for role, path in (("before", pair.before), ("after", pair.after)):
                raw = read_raster(path)
                rgb = to_rgb8(raw, path)
                images[role] = rgb
                if path.suffix.lower() in (".png", ".jpg", ".jpeg") and raw.dtype == np.uint8 and raw.shape[2] == 3:
                    image_paths[role] = path
                else:
                    target = files_dir / role / f"{uid}.png"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(rgb).save(target)
                    image_paths[role] = target
                    stats.converted_images += 1
            if images["before"].shape != images["after"].shape:
                raise BuildError(
                    f"{pair.before}: size {images['before'].shape[:2]} differs from the after image "
                    f"{pair.after} {images['after'].shape[:2]}"
                )
            if len(pair.labels) == 2:  # SECOND: semantic maps of both dates
                before_cls = second_classes(read_raster(pair.labels[0]), pair.labels[0])
                after_cls = second_classes(read_raster(pair.labels[1]), pair.labels[1])
                change = (before_cls > 0) | (after_cls > 0)
                facts = extract_facts(change, before_cls, after_cls, min_area_fraction=min_area_fraction)
                mask_path = files_dir / "mask" / f"{uid}.png"
                mask_path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(change.astype(np.uint8) * 255).save(mask_path)
            else:
                mask = binary_mask(read_raster(pair.labels[0]), pair.labels[0])
                facts = extract_facts(mask, cls=cls, kind=kind, min_area_fraction=min_area_fraction)
                mask_path = pair.labels[0]
                change = mask
            if change.shape != images["before"].shape[:2]:
                raise BuildError(
                    f"{pair.labels[0]}: mask size {change.shape} differs from the image size "
                    f"{images['before'].shape[:2]}"
                )
            captions = render_captions(facts)
            if rewrite is not None:
                from .maskcaption.rewrite import rewrite_captions

                captions = rewrite_captions(facts, captions, rewrite)
            good = [c for c in captions if check_caption(c, facts).passed]
            stats.rejected_captions += len(captions) - len(good)
            if not good:
                raise BuildError(f"{uid}: no caption passed the quality gates: {captions}")
            record = {
                "uid": uid,
                "before": _relative(image_paths["before"], out_jsonl.parent),
                "after": _relative(image_paths["after"], out_jsonl.parent),
                "captions": good,
                "changed": facts.changed,
                "mask": _relative(mask_path, out_jsonl.parent),
            }
            out.write(json.dumps(record) + "\n")
            stats.pairs += 1
            stats.changed += facts.changed
            if progress is not None:
                progress(1)
    tmp.replace(out_jsonl)
    return stats
