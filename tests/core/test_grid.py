"""The chip grid contract (docs/ARCHITECTURE.md "Chip grid")."""

from __future__ import annotations

import itertools
import math

import pytest
from ccexpert_changes.core.grid import ChipGrid, RasterGrid, parse_tile_id

GT = (500000.0, 0.5, 0.0, 4100000.0, 0.0, -0.5)


def make(width=1000, height=700, chip=384, overlap=0, gt=GT, crs="EPSG:32615"):
    return ChipGrid(RasterGrid.from_geotransform(gt, width, height, crs), chip, overlap)


def test_chips_snap_to_before_pixels_and_cover_raster():
    grid = make(overlap=64)
    assert grid.stride == 320
    chips = list(grid.chips())
    assert (grid.n_rows, grid.n_cols) == (2, 3)  # 700-64 -> 2 strides; 1000-64 -> 3 strides
    assert [(c.row, c.col) for c in chips] == list(itertools.product(range(2), range(3)))  # row-major
    for c in chips:
        # every stride, except the last row/column: moved back to end at the raster's edge
        assert c.xoff == (c.col * 320 if c.col < 2 else 1000 - 384)
        assert c.yoff == (c.row * 320 if c.row < 1 else 700 - 384) and c.size == 384
        xmin, ymin, xmax, ymax = c.bounds
        assert xmin == pytest.approx(500000.0 + c.xoff * 0.5)
        assert ymax == pytest.approx(4100000.0 - c.yoff * 0.5)
        assert xmax - xmin == pytest.approx(384 * 0.5) and ymax - ymin == pytest.approx(384 * 0.5)
    # every raster pixel is inside some chip, and every chip inside the raster: no padding, no polygon outside it
    for x, y in itertools.product([*range(0, 1000, 7), 999], [*range(0, 700, 7), 699]):
        assert any(c.xoff <= x < c.xoff + c.size and c.yoff <= y < c.yoff + c.size for c in chips), (x, y)
    last = chips[-1]
    assert (last.xoff + last.size, last.yoff + last.size) == (1000, 700)
    assert all(c.xoff + c.size <= 1000 and c.yoff + c.size <= 700 for c in chips)
    assert last.bounds[2] == pytest.approx(grid.raster.bounds[2]) and last.bounds[1] == pytest.approx(
        grid.raster.bounds[1]
    )


def test_no_redundant_chip_when_raster_fits_exactly():
    assert make(width=384, height=384, overlap=64).count() == 1
    assert make(width=385, height=384, overlap=64).count() == 2
    assert make(width=384, height=384).count() == 1


@pytest.mark.parametrize("width, height", [(102, 102), (383, 1000), (1000, 200)])
def test_a_raster_smaller_than_one_chip_is_refused_naming_the_chip_size_that_fits(width, height):
    """It used to get one padded chip, "skipped for nodata" with a polygon far past the imagery (issue 25.4)."""
    from ccexpert_changes.core.grid import RasterTooSmall

    expected = rf"before raster is {width} x {height} pixels, smaller than one chip of 384 x 384"
    with pytest.raises(RasterTooSmall, match=expected) as info:
        make(width=width, height=height)
    assert info.value.largest_chip == min(width, height)
    assert f"chip size of at most {min(width, height)} pixels" in str(info.value)
    fits = make(width=width, height=height, chip=min(width, height))  # the suggested chip size works
    chips = list(fits.chips())
    assert chips and all(c.xoff + c.size <= width and c.yoff + c.size <= height for c in chips)


def test_tile_ids_stable_and_grid_hash_changes_with_grid():
    a, b = make(), make()
    assert a.grid_hash == b.grid_hash and len(a.grid_hash) == 8
    assert a.tile_id(1, 2) == f"r00001_c00002_{a.grid_hash}"
    assert parse_tile_id(a.tile_id(12, 345)) == (12, 345, a.grid_hash)
    other = {
        make(chip=256).grid_hash,
        make(overlap=32).grid_hash,
        make(gt=(500000.5, 0.5, 0.0, 4100000.0, 0.0, -0.5)).grid_hash,
        make(gt=(500000.0, 0.6, 0.0, 4100000.0, 0.0, -0.5)).grid_hash,
        make(crs="EPSG:32616").grid_hash,
    }
    assert a.grid_hash not in other and len(other) == 5
    # same grid read through another library: last-bit float noise and case do not change the hash
    noisy = (500000.0 + 1e-10, 0.5 + 1e-17, 0.0, 4100000.0, 0.0, -0.5)
    assert make(gt=noisy, crs=" epsg:32615").grid_hash == a.grid_hash
    # raster size is not part of the hash: a larger raster on the same grid keeps the ids
    assert make(width=5000).grid_hash == a.grid_hash


def test_bounds_selects_overlapping_chips_only():
    grid = make()  # stride 384, 3 cols x 2 rows
    # a box inside chip (0, 1) only
    x0 = 500000.0 + 400 * 0.5
    box = (x0, 4100000.0 - 100 * 0.5, x0 + 10, 4100000.0 - 50 * 0.5)
    assert [(c.row, c.col) for c in grid.chips(box)] == [(0, 1)]
    assert grid.count(box) == 1
    # a box ending exactly on a chip edge does not pull in the next chip (positive-area overlap)
    edge = 500000.0 + 384 * 0.5
    assert [(c.row, c.col) for c in grid.chips((500000.0, 4099990.0, edge, 4100000.0))] == [(0, 0)]
    # outside the raster: nothing; partly outside: clipped
    assert grid.count((0.0, 0.0, 1.0, 1.0)) == 0
    assert grid.count((400000.0, 3000000.0, 600000.0, 5000000.0)) == 6


def test_keep_filter_and_count_agree():
    grid = make()
    keep = lambda chip: (chip.row + chip.col) % 2 == 0  # noqa: E731
    kept = list(grid.chips(keep=keep))
    assert [(c.row, c.col) for c in kept] == [(0, 0), (0, 2), (1, 1)]
    assert grid.count(keep=keep) == 3


def test_count_is_constant_time_and_chips_stream_for_huge_rasters():
    grid = make(width=10_000_000, height=10_000_000, chip=384, overlap=0)
    assert grid.count() == 26042 * 26042  # 678 million chips counted without iterating
    first = next(iter(grid.chips()))
    assert (first.row, first.col) == (0, 0)


def test_south_up_raster_bounds_are_ordered():
    grid = make(gt=(0.0, 1.0, 0.0, 0.0, 0.0, 1.0), width=500, height=500)
    chip = grid.chip(1, 0)
    assert chip.bounds == (0.0, 116.0, 384.0, 500.0)  # the last row ends at the raster edge (row 500)
    assert grid.count((0.0, 390.0, 10.0, 400.0)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gt": (0.0, 1.0, 0.1, 0.0, 0.0, -1.0)}, "rotated"),
        ({"gt": (0.0, 1.0, 0.0, 0.0, 0.2, -1.0)}, "rotated"),
        ({"width": 0}, "size must be positive"),
        ({"height": -5}, "size must be positive"),
        ({"gt": (0.0, 0.0, 0.0, 0.0, 0.0, -1.0)}, "non-zero"),
        ({"chip": 0}, "chip size"),
        ({"chip": -384}, "chip size"),
        ({"overlap": 384}, "overlap"),
        ({"overlap": -1}, "overlap"),
    ],
)
def test_refuses_bad_grids(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_refuses_bad_chip_index_and_tile_id():
    grid = make()
    with pytest.raises(ValueError, match="outside the grid"):
        grid.chip(2, 0)
    for bad in ("r1_c2", "x00001_c00002_ab12cd34", "r00001_c00002_zzzzzzzz"):
        with pytest.raises(ValueError, match="not a tile id"):
            parse_tile_id(bad)


def _contract_hash(origin_x, origin_y, pixel_w, pixel_h, chip, stride, crs) -> str:
    """docs/ARCHITECTURE.md "Chip grid", restated independently of grid.py: sha1 over the 12-significant-digit
    origin and pixel size, chip size, stride, CRS and the grid version joined by "|", first 8 hex characters."""
    import hashlib

    parts = [format(float(v), ".12g") for v in (origin_x, origin_y, pixel_w, pixel_h)] + [str(chip), str(stride), crs]
    parts.append("owned-1based")  # the grid version: owned polygons, 1-based rows, edge chips end at the raster edge
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:8]


@pytest.mark.parametrize(("chip", "overlap"), [(384, 0), (384, 64), (256, 32)])
def test_grid_hash_is_the_documented_one(chip, overlap):
    """Tile ids are written by the plugin and by ``ccexpert describe`` and matched on resume: the hash is a contract
    (issue 20: hashing the overlap instead of the stride, say, still told grids apart but broke old outputs)."""
    grid = make(chip=chip, overlap=overlap)
    assert grid.grid_hash == _contract_hash(500000.0, 4100000.0, 0.5, -0.5, chip, chip - overlap, "EPSG:32615")
    assert grid.tile_id(3, 7) == f"r00003_c00007_{grid.grid_hash}"


def test_the_last_chips_end_at_the_edge_and_are_found_by_bounds():
    grid = make(width=2048, height=2048)  # 5 x 384 + 128: the 6th chip of each row starts at 2048 - 384
    assert (grid.n_rows, grid.n_cols) == (6, 6)
    assert [grid.chip(0, col).xoff for col in range(6)] == [0, 384, 768, 1152, 1536, 1664]
    strip = (500000.0 + 2000 * 0.5, 4100000.0 - 10 * 0.5, 500000.0 + 2048 * 0.5, 4100000.0)  # the last 48 pixels
    assert [(c.row, c.col) for c in grid.chips(strip)] == [(0, 5)]
    just_before = (500000.0 + 1670 * 0.5, 4100000.0 - 10 * 0.5, 500000.0 + 1680 * 0.5, 4100000.0)
    assert [(c.row, c.col) for c in grid.chips(just_before)] == [(0, 4), (0, 5)]  # both chips hold those pixels
    assert grid.count() == 36


def test_the_old_overhanging_grid_has_another_hash():
    """Outputs made with the earlier grid (edge chips past the raster) must not be resumed with this one."""
    import hashlib

    old = [format(float(v), ".12g") for v in (500000.0, 4100000.0, 0.5, -0.5)] + ["384", "384", "EPSG:32615"]
    assert make().grid_hash != hashlib.sha1("|".join(old).encode()).hexdigest()[:8]


@pytest.mark.parametrize("width, height, overlap", [(1000, 700, 0), (1000, 700, 64), (1152, 1152, 0), (385, 999, 32)])
def test_owned_parts_tile_the_raster_without_gaps_or_overlaps(width, height, overlap):
    """Issue 25.7: the output polygon is the part a tile owns, so edge tiles no longer lie over their neighbours
    (doubled tint, stacked labels, two Identify results). The chip itself is unchanged."""
    grid = make(width=width, height=height, overlap=overlap)
    chips = list(grid.chips())
    area = 0.0
    for c in chips:
        xmin, ymin, xmax, ymax = c.owned
        cx0, cy0, cx1, cy1 = c.bounds
        assert cx0 <= xmin < xmax <= cx1 and cy0 <= ymin < ymax <= cy1  # inside the chip the model saw
        area += (xmax - xmin) * (ymax - ymin)
        for d in chips:
            if d is not c:
                ox = min(xmax, d.owned[2]) - max(xmin, d.owned[0])
                oy = min(ymax, d.owned[3]) - max(ymin, d.owned[1])
                assert ox <= 1e-9 or oy <= 1e-9, (c.row, c.col, d.row, d.col)  # no two tiles share area
    rxmin, rymin, rxmax, rymax = grid.raster.bounds
    assert area == pytest.approx((rxmax - rxmin) * (rymax - rymin))  # and together they cover the raster
    # whole pixels: every edge of an owned part is on the before raster's pixel grid
    for c in chips:
        for x in (c.owned[0], c.owned[2]):
            assert ((x - GT[0]) / 0.5) == pytest.approx(round((x - GT[0]) / 0.5))


def test_the_last_column_owns_only_what_its_neighbour_does_not_see_twice():
    grid = make(width=1000, height=384)  # chips at x 0, 384, 616 (moved inward; overlaps its neighbour by 152 px)
    last, middle = grid.chip(0, 2), grid.chip(0, 1)
    assert (last.xoff, middle.xoff) == (616, 384)
    split = GT[0] + (616 + 768) // 2 * 0.5  # the middle of the overlap [616, 768)
    assert middle.owned[2] == pytest.approx(split) and last.owned[0] == pytest.approx(split)
    assert last.owned[2] == pytest.approx(GT[0] + 1000 * 0.5) and last.bounds[0] == pytest.approx(GT[0] + 616 * 0.5)


# -- the one "is AFTER on BEFORE's pixel grid" rule (plugin reader and describe's raster_io) ------------------
NORTH_UP = (500000.0, 0.5, 0.0, 4000000.0, 0.0, -0.5)


def _moved(gt, dx_px: float, dy_px: float, **changes):
    x0, pw, rx, y0, ry, ph = gt
    moved = [x0 - dx_px * pw, pw, rx, y0 - dy_px * ph, ry, ph]
    for index, value in changes.items():
        moved[int(index[1:])] = value
    return tuple(moved)


def test_grid_offset_whole_pixels_are_read_directly():
    from ccexpert_changes.core.grid import grid_offset

    assert grid_offset(NORTH_UP, NORTH_UP).whole == (0, 0)
    assert grid_offset(NORTH_UP, _moved(NORTH_UP, 3, 7)).whole == (3, 7)
    assert grid_offset(NORTH_UP, _moved(NORTH_UP, -12, 0)).whole == (-12, 0)
    assert grid_offset(NORTH_UP, _moved(NORTH_UP, 5.0004, 2)).whole == (5, 2)  # within 1e-3 px: float noise


def test_grid_offset_fractions_and_other_pixel_sizes_are_resampled():
    from ccexpert_changes.core.grid import grid_offset

    half = grid_offset(NORTH_UP, _moved(NORTH_UP, 0.5, 0))
    assert half is not None and half.whole is None and (half.dx, half.dy) == (0.5, 0.0)
    assert grid_offset(NORTH_UP, _moved(NORTH_UP, 2, 0.01)).whole is None
    assert grid_offset(NORTH_UP, _moved(NORTH_UP, 0, 0, g1=0.6)) is None  # another pixel size
    assert grid_offset(NORTH_UP, _moved(NORTH_UP, 0, 0, g5=0.5)) is None  # south-up after a north-up before


@pytest.mark.parametrize(
    "bad",
    [
        (500000.0, 0.5, 0.1, 4000000.0, 0.0, -0.5),  # rotated
        (500000.0, 0.5, 0.0, 4000000.0, 0.2, -0.5),  # sheared
        (math.inf, 0.5, 0.0, 4000000.0, 0.0, -0.5),
        (500000.0, math.nan, 0.0, 4000000.0, 0.0, -0.5),
        (500000.0, 0.0, 0.0, 4000000.0, 0.0, -0.5),
        (500000.0, 0.5, 0.0, 4000000.0, 0.0),  # five terms
    ],
    ids=["rotated", "sheared", "infinite origin", "nan pixel", "zero pixel", "five terms"],
)
def test_grid_offset_refuses_what_the_raster_grid_refuses(bad):
    from ccexpert_changes.core.grid import RasterGrid, grid_offset, north_up_plain

    assert not north_up_plain(bad)
    assert grid_offset(NORTH_UP, bad) is None and grid_offset(bad, NORTH_UP) is None
    with pytest.raises(ValueError):
        RasterGrid.from_geotransform(bad, 10, 10, "EPSG:32615")
