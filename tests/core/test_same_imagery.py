"""The Before = After guard (core.sources.same_imagery): the same file under any name is the same imagery."""

from __future__ import annotations

import os

import pytest
from ccexpert_changes.core.sources import same_imagery


@pytest.fixture
def rasters(tmp_path):
    a, b = tmp_path / "before.tif", tmp_path / "after.tif"
    a.write_bytes(b"II*\0 before")
    b.write_bytes(b"II*\0 after")
    return a, b


def test_same_path_in_other_spellings(rasters, tmp_path, monkeypatch):
    a, b = rasters
    assert same_imagery(str(a), str(a))
    assert same_imagery(str(a), str(tmp_path / "sub" / ".." / "before.tif"))
    monkeypatch.chdir(tmp_path)
    assert same_imagery("before.tif", str(a)) and same_imagery("./before.tif", str(a))
    assert not same_imagery(str(a), str(b))


def test_links_to_the_same_file(rasters, tmp_path):
    a, b = rasters
    link = tmp_path / "link.tif"
    link.symlink_to(a)
    hard = tmp_path / "hard.tif"
    os.link(a, hard)
    assert same_imagery(str(link), str(a)) and same_imagery(str(hard), str(a)) and same_imagery(str(link), str(hard))
    assert not same_imagery(str(link), str(b))


def test_a_copy_is_not_the_same_file(rasters, tmp_path):
    a, _ = rasters
    copy = tmp_path / "copy.tif"
    copy.write_bytes(a.read_bytes())
    assert not same_imagery(str(a), str(copy))


def test_gdal_style_sources_compare_the_file_part(rasters):
    a, b = rasters
    assert same_imagery(f"{a}|layername=x", str(a))
    assert same_imagery(f"{a}|layername=x", f"{a}|layername=y")
    assert not same_imagery(f"{a}|layername=x", f"{b}|layername=x")


def test_missing_files_compare_normalised_paths(tmp_path):
    assert same_imagery(str(tmp_path / "gone.tif"), str(tmp_path / "x" / ".." / "gone.tif"))
    assert not same_imagery(str(tmp_path / "gone.tif"), str(tmp_path / "other.tif"))
    assert not same_imagery("", "") and not same_imagery("", str(tmp_path / "gone.tif"))
