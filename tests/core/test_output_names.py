"""Issue 25.2: a run's default output is a new file (never an existing one, nor a name a running run stages into),
and each run's layer has a name of its own."""

from __future__ import annotations

from datetime import datetime

from ccexpert_changes.core.output_names import default_output_path, result_layer_name, unique_path

WHEN = datetime(2026, 12, 7, 16, 5, 42)


def test_default_output_is_named_after_the_time_and_never_an_existing_file(tmp_path):
    first = default_output_path(str(tmp_path), WHEN)
    assert first == str(tmp_path / "ccexpert_changes_20261207_1605.gpkg")
    (tmp_path / "ccexpert_changes_20261207_1605.gpkg").write_bytes(b"a run's result")
    second = default_output_path(str(tmp_path), WHEN)
    assert second == str(tmp_path / "ccexpert_changes_20261207_1605_2.gpkg")
    (tmp_path / ".ccexpert_changes_20261207_1605_2.gpkg.123-abc.partial.gpkg").write_bytes(b"a run in progress")
    assert default_output_path(str(tmp_path), WHEN).endswith("_1605_3.gpkg")
    assert (tmp_path / "ccexpert_changes_20261207_1605.gpkg").read_bytes() == b"a run's result"


def test_unsafe_characters_and_a_missing_folder(tmp_path):
    assert unique_path(str(tmp_path), "a b/c:d") == str(tmp_path / "a_b_c_d.gpkg")
    assert unique_path(str(tmp_path / "not yet"), "x") == str(tmp_path / "not yet" / "x.gpkg")
    assert unique_path(str(tmp_path), "///") == str(tmp_path / "ccexpert_changes.gpkg")


def test_layer_names_say_which_after_raster_and_when_and_are_numbered_when_taken():
    name = result_layer_name("/data/2021/chip_2.tif|layername=x", WHEN)
    assert name == "Change captions – chip_2.tif 2026-12-07 16:05"
    taken = {name, name + " (2)"}
    assert result_layer_name("/other/chip_2.tif", WHEN, taken) == name + " (3)"
    assert result_layer_name(None, WHEN) == "Change captions 2026-12-07 16:05"
    assert result_layer_name("a.tif", WHEN, title="Änderungen").startswith("Änderungen – a.tif")
