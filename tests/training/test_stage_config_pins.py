"""Booleans are refused where integers are expected in a stage config (issue 30): YAML reads ``batch_size: true``
as True, and Python's bool is an int, so a checker that forgets it would train with a batch of 1."""

from __future__ import annotations

import dataclasses

import pytest
from ccexpert_training.stage.config import CONFIG_DIR, load_stage_config
from ccexpert_training.stage.errors import ConfigError
from ccexpert_training.stage.schema import SECTIONS

PATHS = {
    "model.init_from": "/nonexistent/init",
    "data.train": "/nonexistent/t.jsonl",
    "data.val": "/nonexistent/v.jsonl",
    "training.output_dir": "/nonexistent/out",
}
INTEGER_KEYS = sorted(
    f"{section}.{f.name}"
    for section, cls in SECTIONS.items()
    for f in dataclasses.fields(cls)
    if "int" in str(f.type) and "bool" not in str(f.type)
)


def test_the_integer_keys_are_found():
    assert {"batch.global_batch_size", "batch.per_device_train_batch_size", "training.max_steps"} <= set(INTEGER_KEYS)


@pytest.mark.parametrize("key", INTEGER_KEYS)
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_for_an_integer_is_refused_naming_the_key(key, value):
    """Broken copy: ``_integer`` without its ``isinstance(value, bool)`` guard took ``True`` as 1 for every
    integer key (and ``False`` as 0 where 0 is allowed); these cases failed."""
    with pytest.raises(ConfigError, match=rf"^overrides: {key}: expected .*, got {value}$"):
        load_stage_config("stage2.yaml", {**PATHS, key: value})


def test_batch_size_true_in_a_yaml_file_is_refused_naming_the_file(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text(f"base: {CONFIG_DIR / 'stage1.yaml'}\nbatch:\n  per_device_train_batch_size: true\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml: batch\.per_device_train_batch_size: expected .*got True"):
        load_stage_config(config, PATHS)
