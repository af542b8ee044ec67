"""Realistic 384 px before/after chips for the preparation benchmarks: crops of the real sample rasters in
../shared/data when present (xBD and xView2 Joplin, 1024 px), else generated textured chips (smooth fields, fields
of parcels, buildings, noise) that compress like aerial imagery, not like random noise (which never compresses)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout (a worktree sits one folder deeper)
SHARED = next(
    (p / "shared" / "data" for p in (REPO.parent, REPO.parent.parent) if (p / "shared" / "data").is_dir()),
    REPO.parent / "shared" / "data",
)
REAL_PAIRS = (("xbd/A/test_00123.png", "xbd/B/test_00123.png"),)
REAL_PAIRS += (("xview2_joplin_geotiff/A/chip_0.tif", "xview2_joplin_geotiff/B/chip_0.tif"),)


def real_pairs(size: int = 384, shared: Path = SHARED) -> list[tuple[np.ndarray, np.ndarray]]:
    """Non-overlapping `size` crops of the real pairs present under `shared` ([] when none is)."""
    pairs = []
    for before_name, after_name in REAL_PAIRS:
        before_path, after_path = shared / before_name, shared / after_name
        if not (before_path.is_file() and after_path.is_file()):
            continue
        before = np.asarray(Image.open(before_path).convert("RGB"))
        after = np.asarray(Image.open(after_path).convert("RGB"))
        rows, cols = min(before.shape[0], after.shape[0]) // size, min(before.shape[1], after.shape[1]) // size
        for r in range(rows):
            for c in range(cols):
                window = (slice(r * size, (r + 1) * size), slice(c * size, (c + 1) * size))
                pairs.append((np.ascontiguousarray(before[window]), np.ascontiguousarray(after[window])))
    return pairs


def textured_pair(seed: int, size: int = 384) -> tuple[np.ndarray, np.ndarray]:
    """A generated pair: smooth colour fields + parcels + speckle; the after image gains a few buildings."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (6, 6, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.int16)
    parcels = rng.integers(-25, 25, (12, 12, 3), dtype=np.int16).repeat(size // 12 + 1, 0).repeat(size // 12 + 1, 1)
    before = base + parcels[:size, :size] + rng.normal(0, 7, (size, size, 3)).astype(np.int16)
    after = before + rng.normal(0, 3, (size, size, 3)).astype(np.int16)  # another day's light and sensor noise
    for _ in range(int(rng.integers(2, 6))):
        y, x = rng.integers(0, size - 40, 2)
        h, w = rng.integers(12, 40, 2)
        after[y : y + h, x : x + w] = rng.integers(150, 255, 3)
    return before.clip(0, 255).astype(np.uint8), after.clip(0, 255).astype(np.uint8)


def chip_pairs(count: int, size: int = 384, source: str = "auto") -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """`count` pairs (real crops repeated, or generated) and where they came from ("real" or "generated")."""
    if source not in ("auto", "real", "generated"):
        raise ValueError(f"source must be auto, real or generated, got {source!r}")
    real = real_pairs(size) if source != "generated" else []
    if source == "real" and not real:
        raise SystemExit(f"no real sample rasters under {SHARED} (use --source generated)")
    if real:
        return [real[i % len(real)] for i in range(count)], "real"
    return [textured_pair(i, size) for i in range(count)], "generated"


def png(array: np.ndarray, level: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, "RGB").save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()
