"""Synthetic bi-temporal pairs and the benchmark on disk (train/val/test JSONL in the record format).

Each pair is drawn from its own random stream ``(seed, index)``, so pair i is the same whatever N is and
the split files are reproducible byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ccexpert_training.maskcaption.facts import CLASS_IDS, CLASS_NAMES, LAND_COVER, ChangeFacts, extract_facts
from ccexpert_training.maskcaption.render import render_captions

from .layout import TILE, Layout, make_tile, random_change
from .raster import Acquisition, class_map, render

SIZE = 256
# share of changed pairs with two changes (the benchmark's; training may over-sample them: make_pair's two_changes)
TWO_CHANGES = 0.15
SPLITS = (("train", 0.8), ("val", 0.1), ("test", 0.1))
# A palette so semantic change masks are viewable; index = class id.
MASK_PALETTE = [
    0,
    0,
    0,
    184,
    163,
    132,
    118,
    146,
    84,
    30,
    110,
    40,
    40,
    90,
    200,
    150,
    150,
    150,
    230,
    60,
    50,
    240,
    200,
    40,
]


@dataclass
class Pair:
    uid: str
    # the images are None in the pairs write_benchmark yields (written to disk; facts and captions kept)
    before: np.ndarray | None  # HxWx3 uint8
    after: np.ndarray | None
    mask: np.ndarray | None  # HxW uint8 semantic change mask (class id of what appeared / disappeared; 0 = none)
    facts: ChangeFacts
    captions: list[str]
    events: list[str]


def semantic_change_mask(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Class id of the changed object per pixel: the new class, or the old one where an object was removed."""
    land = np.isin(after, [CLASS_IDS[c] for c in LAND_COVER])
    object_before = ~np.isin(before, [CLASS_IDS[c] for c in LAND_COVER])
    lost = land & (object_before | (before == CLASS_IDS["forest"]))
    return np.where(before == after, 0, np.where(lost, before, after)).astype(np.uint8)


def _view(lay: Layout, after: Layout, rng: np.random.Generator, zoom: float, changed: bool) -> tuple[Layout, Layout]:
    """The two layouts seen through a window of side TILE / zoom: centred on the change, or anywhere."""
    side = lay.size / zoom
    if changed:
        before_cls = class_map(lay, (64, 64), 64 / lay.size)
        after_cls = class_map(after, (64, 64), 64 / lay.size)
        rows, cols = np.nonzero(before_cls != after_cls)
        cy, cx = (
            (lay.y0 + (rows.mean() + 0.5) * lay.size / 64, lay.x0 + (cols.mean() + 0.5) * lay.size / 64)
            if rows.size
            else (lay.y0 + lay.size / 2, lay.x0 + lay.size / 2)
        )
        cx, cy = cx + rng.uniform(-side / 4, side / 4), cy + rng.uniform(-side / 4, side / 4)
    else:
        cx = lay.x0 + rng.uniform(side / 2, lay.size - side / 2)
        cy = lay.y0 + rng.uniform(side / 2, lay.size - side / 2)
    x0 = float(np.clip(cx - side / 2, lay.x0, lay.x0 + lay.size - side))
    y0 = float(np.clip(cy - side / 2, lay.y0, lay.y0 + lay.size - side))
    return replace(lay, x0=x0, y0=y0, size=side), replace(after, x0=x0, y0=y0, size=side)


def check_share(two_changes: float) -> None:
    """``two_changes`` must be a share: checked by make_pair and, before any work, by write_benchmark."""
    if not 0.0 <= two_changes <= 1.0:
        raise ValueError(f"two_changes must be a share in [0, 1], got {two_changes}")


def make_pair(
    seed: int,
    index: int,
    changed: bool | None = None,
    size: int = SIZE,
    date_shift: bool = True,
    zoom: float = 1.0,
    two_changes: float = TWO_CHANGES,
) -> Pair:
    """Pair ``index`` of the benchmark with seed ``seed``. ``changed`` forces a kind; None = 50/50.

    ``date_shift=False`` renders both dates under the same acquisition (sun, season, illumination, noise, cars): the
    easy variant, where raw pixel differences are exactly the changes (a curriculum for training from scratch).
    The layouts and changes are the same as with ``date_shift=True``. ``zoom`` > 1 shows a window of 1/zoom of the
    tile around the change (changes cover zoom^2 more of the image: another curriculum step). ``two_changes``: the
    share of changed pairs with two changes (the random draws are the same whatever it is)."""
    check_share(two_changes)
    rng = np.random.default_rng([seed, index])
    if changed is None:
        changed = bool(rng.random() < 0.5)
    ground_seed = int(rng.integers(1 << 30))
    scale = size / TILE * zoom
    shape = (size, size)
    for _ in range(8):
        lay = make_tile(rng)
        after_lay, events = random_change(rng, lay, 2 if rng.random() < two_changes else 1) if changed else (lay, [])
        if zoom != 1.0:
            lay, after_lay = _view(lay, after_lay, rng, zoom, changed)
        acq_before, acq_after = Acquisition.random(rng), Acquisition.random(rng)
        if not date_shift:
            acq_after = acq_before
        before_img, before_cls = render(lay, acq_before, shape, scale, ground_seed)
        after_img, after_cls = render(after_lay, acq_after, shape, scale, ground_seed)
        mask = semantic_change_mask(before_cls, after_cls)
        facts = extract_facts(mask > 0, before_cls, after_cls)
        if facts.changed == changed:
            break
    else:  # pragma: no cover - a changed layout always finds room within a few tries
        raise RuntimeError(f"pair {index} of seed {seed}: no change could be placed")
    return Pair(f"synth{seed}_{index:06d}", before_img, after_img, mask, facts, render_captions(facts), events)


def split_of(index: int, n: int) -> str:
    """Contiguous splits: the first 80% train, then 10% val, 10% test."""
    edge = 0.0
    for name, share in SPLITS:
        edge += share
        if index < round(edge * n):
            return name
    return SPLITS[-1][0]


def _save_mask(path: Path, mask: np.ndarray) -> None:
    img = Image.fromarray(mask, mode="P")
    img.putpalette(MASK_PALETTE)
    img.save(path)


def write_benchmark(
    out_dir: str | Path,
    n: int,
    seed: int,
    size: int = SIZE,
    progress=None,
    splits: tuple[str, ...] = ("train", "val", "test"),
    workers: int = 1,
    date_shift: bool = True,
    zoom: float = 1.0,
    two_changes: float = TWO_CHANGES,
) -> dict[str, Path]:
    """Write ``n`` pairs: images under ``out_dir/images/{A,B,label}``, records in ``{train,val,test}.jsonl``
    and the facts of every pair in ``facts.jsonl``. Returns the JSONL paths by split.

    ``splits`` limits the work to some splits (e.g. only ``("test",)`` for an evaluation set of another seed);
    a pair keeps its index, uid and split whatever is selected. ``workers`` > 1 renders pairs in that many
    processes; the output is the same. ``date_shift=False`` and ``zoom`` write easier variants and ``two_changes``
    another share of two-change pairs (see :func:`make_pair`)."""
    check_share(two_changes)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not zoom >= 1.0:
        raise ValueError(f"zoom must be >= 1 (a window of 1/zoom of each tile), got {zoom}")
    unknown = set(splits) - {name for name, _ in SPLITS}
    if unknown or not splits:
        raise ValueError(f"splits must be a non-empty subset of {[name for name, _ in SPLITS]}, got {list(splits)}")
    out = Path(out_dir)
    for sub in ("A", "B", "label"):
        (out / "images" / sub).mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.jsonl" for name, _ in SPLITS if name in splits}
    files = {name: path.open("w", encoding="utf-8") for name, path in paths.items()}
    try:
        with (out / "facts.jsonl").open("w", encoding="utf-8") as facts_file:
            for pair in _pairs(seed, n, size, progress, splits, workers, out, date_shift, zoom, two_changes):
                name = f"{pair.uid}.png"
                record = {
                    "uid": pair.uid,
                    "before": f"images/A/{name}",
                    "after": f"images/B/{name}",
                    "captions": pair.captions,
                    "changed": pair.facts.changed,
                    "mask": f"images/label/{name}",
                }
                index = int(pair.uid.rsplit("_", 1)[1])
                files[split_of(index, n)].write(json.dumps(record) + "\n")
                facts_file.write(json.dumps({"uid": pair.uid, "events": pair.events, **pair.facts.to_dict()}) + "\n")
    finally:
        for f in files.values():
            f.close()
    (out / "README.txt").write_text(
        f"Synthetic bi-temporal benchmark: {n} pairs, seed {seed}, {size}x{size} px, generated by `ccexpert synth`"
        f"{'' if date_shift else ' (easy variant: no acquisition change between dates)'}"
        f"{'' if two_changes == TWO_CHANGES else f' ({two_changes:.0%} of changed pairs with two changes)'}.\n"
        "Procedural aerial-like scenes, not real imagery. Masks: semantic change masks, pixel value = class id "
        f"{json.dumps(CLASS_NAMES)}; 0 = no change.\n",
        encoding="utf-8",
    )
    return paths


def _render_and_save(job: tuple[int, int, int, str, bool, float, float]) -> Pair:
    """Make pair ``index`` and write its images (in a worker process when ``workers`` > 1)."""
    seed, index, size, out, date_shift, zoom, two_changes = job
    pair = make_pair(seed, index, size=size, date_shift=date_shift, zoom=zoom, two_changes=two_changes)
    assert pair.before is not None and pair.after is not None and pair.mask is not None, "make_pair draws them"
    name = f"{pair.uid}.png"
    # fast PNG compression: sensor noise makes level 6 barely smaller and it was half of the generation time
    Image.fromarray(pair.before).save(Path(out) / "images" / "A" / name, compress_level=1)
    Image.fromarray(pair.after).save(Path(out) / "images" / "B" / name, compress_level=1)
    _save_mask(Path(out) / "images" / "label" / name, pair.mask)
    pair.before = pair.after = pair.mask = None  # the images are on disk; keep the facts and captions
    return pair


def _pairs(
    seed: int,
    n: int,
    size: int,
    progress,
    splits: tuple[str, ...],
    workers: int,
    out: Path,
    date_shift: bool,
    zoom: float,
    two_changes: float,
) -> Iterator[Pair]:
    jobs = [
        (seed, index, size, str(out), date_shift, zoom, two_changes)
        for index in range(n)
        if split_of(index, n) in splits
    ]
    if progress is not None and len(jobs) < n:
        progress(n - len(jobs))
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for pair in pool.imap(_render_and_save, jobs, chunksize=4):
                yield pair
                if progress is not None:
                    progress(1)
        return
    for job in jobs:
        yield _render_and_save(job)
        if progress is not None:
            progress(1)
