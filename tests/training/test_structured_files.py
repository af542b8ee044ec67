"""One reader for the JSON/YAML files users name (stage configs, DeepSpeed configs, mixtures, captions files): every
caller's bad file gets the same wording, in the caller's own error type."""

from __future__ import annotations

import pytest
from ccexpert_training.mixture import MixtureError, load_mixture
from ccexpert_training.readers import load_captions_mapping
from ccexpert_training.records import RecordError
from ccexpert_training.stage.config import load_stage_config
from ccexpert_training.stage.errors import ConfigError
from ccexpert_training.structured_files import read_json_or_yaml


class MyError(Exception):
    pass


def test_reads_json_and_yaml_by_suffix_or_format(tmp_path):
    (tmp_path / "a.json").write_text('{"x": 1}', encoding="utf-8")
    (tmp_path / "a.yaml").write_text("x: 2\n", encoding="utf-8")
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    (tmp_path / "a.txt").write_text('{"x": 3}', encoding="utf-8")
    assert read_json_or_yaml(tmp_path / "a.json", MyError) == {"x": 1}
    assert read_json_or_yaml(tmp_path / "a.yaml", MyError) == {"x": 2}
    assert read_json_or_yaml(tmp_path / "empty.yaml", MyError) == {}
    assert read_json_or_yaml(tmp_path / "a.txt", MyError, fmt="json") == {"x": 3}


@pytest.mark.parametrize(
    ("name", "content", "fmt", "expected"),
    [
        ("bad.json", "{not json", None, "invalid JSON"),
        ("bad.yaml", "a: [1, 2\n", None, "invalid YAML"),
        ("bad.txt", "{not json", "json", "invalid JSON"),
        ("latin1.yaml", b"x: \xff\xfe\n", None, "cannot read"),
        ("missing.json", None, None, "cannot read"),
    ],
)
def test_bad_files_raise_the_callers_error_naming_the_file(tmp_path, name, content, fmt, expected):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(MyError, match=expected) as info:
        read_json_or_yaml(path, MyError, fmt=fmt)
    assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(MyError, match=f"^configs/x: {expected}"):
        read_json_or_yaml(path, MyError, fmt=fmt, label="configs/x")


def test_a_broken_json_stage_config_is_called_json(tmp_path):
    """The stage config reader used to call every parse error 'invalid YAML', a .json config's too."""
    path = tmp_path / "stage.json"
    path.write_text('{"base": ', encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_stage_config(path)


def test_every_caller_uses_the_shared_wording(tmp_path):
    bad_json = tmp_path / "captions.json"
    bad_json.write_text("{not json", encoding="utf-8")
    with pytest.raises(RecordError, match=f"^{bad_json}: invalid JSON"):
        load_captions_mapping(bad_json)
    bad_yaml = tmp_path / "mixture.yaml"
    bad_yaml.write_text("datasets: [\n", encoding="utf-8")
    with pytest.raises(MixtureError, match=f"^{bad_yaml}: invalid YAML"):
        load_mixture(bad_yaml)
