"""One 8-bit stretch for both dates, nodata masks."""

from __future__ import annotations

import numpy as np
import pytest
from ccexpert_changes.core.stretch import Stretch, compute_stretch, nodata_fraction, padded_valid_mask, valid_mask


def test_uint8_passes_through_unchanged():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 16, 16), dtype=np.uint8)
    s = compute_stretch([(a, None), (a, 0)])
    assert s.passthrough
    np.testing.assert_array_equal(s.apply(a), a)


def test_shared_stretch_keeps_radiometric_difference_visible_and_identical_pixels_identical():
    rng = np.random.default_rng(1)
    before = rng.integers(1000, 3000, (3, 64, 64)).astype(np.uint16)
    after = before.copy()
    after[:, :32] += 500  # brighter half in the after date
    s = compute_stretch([(before, 0), (after, 0)])
    b8, a8 = s.apply(before), s.apply(after)
    assert b8.dtype == np.uint8 and b8.shape == (3, 64, 64)
    np.testing.assert_array_equal(b8[:, 32:], a8[:, 32:])  # same values -> same 8-bit values in both dates
    assert a8[:, :32].mean() > b8[:, :32].mean() + 20  # the difference is not normalised away
    # a per-date stretch would have hidden part of it: both dates would span the full range
    own = compute_stretch([(after, 0)])
    assert own.hi[0] > s.hi[0] - 1 and own.lo[0] > s.lo[0]


def test_percentiles_ignore_nodata_and_nan():
    before = np.full((3, 10, 10), 100.0, dtype=np.float32)
    before[:, 0, :] = np.linspace(100, 200, 10)
    before[:, 5:, :] = -9999.0  # nodata
    after = before.copy()
    after[0, 1, 1] = np.nan
    s = compute_stretch([(before, -9999.0), (after, -9999.0)], low_percent=0, high_percent=100)
    assert s.lo == (100.0, 100.0, 100.0) and s.hi == (200.0, 200.0, 200.0)
    out = s.apply(after, valid_mask(after, -9999.0))
    assert out[:, 5:].max() == 0 and out[0, 0, -1] == 255 and out[:, 1, 1].tolist() == [0, 0, 0]


def test_flat_and_empty_bands_keep_a_range():
    flat = np.full((1, 4, 4), 7, dtype=np.int16)
    s = compute_stretch([(flat, None)])
    assert s.hi[0] > s.lo[0]
    empty = compute_stretch([(np.zeros((1, 4, 4), dtype=np.float32), 0.0)])
    assert (empty.lo, empty.hi) == ((0.0,), (1.0,))


def test_valid_mask_all_bands_rule_and_fraction_with_padding():
    a = np.ones((3, 4, 4), dtype=np.uint8)
    a[:, 0, 0] = 0  # all bands nodata
    a[0, 1, 1] = 0  # one band zero: still data
    v = valid_mask(a, 0)
    assert not v[0, 0] and v[1, 1]
    assert nodata_fraction(v) == pytest.approx(1 / 16)
    padded = padded_valid_mask(a, 0, 8)  # 4x4 data inside an 8x8 chip
    assert padded.shape == (8, 8)
    assert nodata_fraction(padded) == pytest.approx(1 - 15 / 64)
    assert nodata_fraction(valid_mask(a, None)) == 0.0


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="different band counts"):
        compute_stretch([(np.zeros((3, 2, 2)), None), (np.zeros((4, 2, 2)), None)])
    with pytest.raises(ValueError, match="at least one"):
        compute_stretch([])
    with pytest.raises(ValueError, match="stretch has 3 bands"):
        Stretch.identity(3).apply(np.zeros((4, 2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="bands, height, width"):
        valid_mask(np.zeros((1, 2, 2, 2)))
