"""The pixel-size warning shared by the plugin and ``ccexpert describe``."""

from ccexpert_changes.core.gsd import gsd_warning, seen_gsd


def test_close_pixel_sizes_pass_and_far_ones_are_named_with_a_matching_chip_size():
    assert gsd_warning(0.5, 384, 384, 0.5) is None
    assert gsd_warning(0.9, 384, 384, 0.5) is None  # within a factor of two
    text = gsd_warning(10.0, 384, 384, 0.5)  # Sentinel-2 pixels on a 0.5 m model
    assert text and "0.5 m per pixel" in text and "10 m per pixel" in text and "about 19 px" in text
    assert gsd_warning(0.1, 384, 384, 0.5) and "about 1920 px" in gsd_warning(0.1, 384, 384, 0.5)


def test_resizing_counts_and_unknowns_never_warn():
    assert seen_gsd(0.25, 768, 384) == 0.5  # a 768 px chip of 0.25 m pixels resized to 384: 0.5 m seen
    assert gsd_warning(0.25, 768, 384, 0.5) is None
    assert gsd_warning(None, 384, 384, 0.5) is None and gsd_warning(0.5, 384, 384, None) is None
    assert gsd_warning(0.5, 384, 384, "n/a") is None


def test_the_matching_chip_size_the_dialog_offers():
    from ccexpert_changes.core.gsd import matching_chip_size

    assert matching_chip_size(2.0, 384, 384, 0.5) == 96  # issue 25.5: 2 m pixels, 96 px chips find the changes
    assert matching_chip_size(0.5, 384, 384, 0.5) is None
    assert matching_chip_size(100.0, 384, 384, 0.5) == 16  # never below 16 px
    assert matching_chip_size(2.0, 384, 384, None) is None and matching_chip_size(None, 384, 384, 0.5) is None
    assert "about 96 px" in gsd_warning(2.0, 384, 384, 0.5)
