"""The typed stage configuration (ccexpert_training.stage.schema / .config): one dataclass per YAML section, one
validator, and errors that name the file (or `overrides`) and the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from ccexpert_training.stage.config import CONFIG_DIR, load_stage_config
from ccexpert_training.stage.errors import ConfigError
from ccexpert_training.stage.schema import DEFAULTS, SECTIONS, StageConfig, build_stage_config

PATHS = {
    "model.init_from": "/nonexistent/init",
    "data.train": "/nonexistent/t.jsonl",
    "data.val": "/nonexistent/v.jsonl",
    "training.output_dir": "/nonexistent/out",
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_are_the_dataclass_fields():
    for name, cls in SECTIONS.items():
        assert set(DEFAULTS[name]) == {f.name for f in dataclasses.fields(cls)}
    assert set(DEFAULTS) == {f.name for f in dataclasses.fields(StageConfig)}


def test_sections_are_typed_and_frozen():
    cfg = load_stage_config("stage2.yaml", PATHS)
    assert cfg.optim.learning_rate == 1e-5 and isinstance(cfg.optim.learning_rate, float)
    assert cfg.trainable == ("vision_tower", "dim", "projector", "language_model")
    assert cfg.output_dir == "/nonexistent/out"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.optim.learning_rate = 1.0  # type: ignore[misc]


def test_to_dict_loads_back_to_the_same_config():
    cfg = load_stage_config("stage3.yaml", {**PATHS, "data.test": "/nonexistent/test.jsonl"})
    assert load_stage_config(cfg.to_dict()) == cfg


def test_wrong_type_in_a_shipped_file_names_the_file_and_the_key(tmp_path):
    config = _write(
        tmp_path / "mine.yaml", "base: " + str(CONFIG_DIR / "stage2.yaml") + "\noptim:\n  learning_rate: abc\n"
    )
    with pytest.raises(ConfigError) as error:
        load_stage_config(config, {k: v for k, v in PATHS.items()})
    assert str(error.value) == f"{config}: optim.learning_rate: expected a positive number, got 'abc'"


def test_the_key_is_blamed_on_the_file_that_set_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "base.yaml", "base: " + str(CONFIG_DIR / "stage1.yaml") + "\nbatch:\n  eval_batch_size: -3\n")
    _write(tmp_path / "child.yaml", "base: base.yaml\ntraining:\n  logging_steps: 5\n")
    with pytest.raises(ConfigError, match=r"^base\.yaml: batch\.eval_batch_size: expected a positive integer, got -3$"):
        load_stage_config("child.yaml", PATHS)
    with pytest.raises(ConfigError, match=r"^configs/stage1\.yaml: data\.val: environment variable"):
        load_stage_config("child.yaml", {k: v for k, v in PATHS.items() if k != "data.val"})


def test_unknown_keys_are_named_with_their_section(tmp_path):
    config = _write(tmp_path / "typo.yaml", "base: " + str(CONFIG_DIR / "stage1.yaml") + "\nmodel:\n  use_dimm: true\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: model\.use_dimm: unknown key; allowed in 'model': \["):
        load_stage_config(config, PATHS)
    with pytest.raises(ConfigError, match=r"^overrides: optimizer: unknown top-level key; allowed \["):
        load_stage_config("stage1.yaml", {**PATHS, "optimizer": {"learning_rate": 1.0}})
    with pytest.raises(ConfigError, match=r"^overrides: batch: expected a mapping, got 4"):
        load_stage_config("stage1.yaml", {**PATHS, "batch": 4})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("model.use_dim", "yes", "expected true or false, got 'yes'"),
        ("model.seed", 1.5, "expected an integer >= 0, got 1.5"),
        ("data.max_val_pairs", 0, "expected a positive integer or null, got 0"),
        ("optim.adam_epsilon", 0, "expected a positive number, got 0"),
        ("optim.weight_decay", True, "expected a number >= 0, got True"),
        ("training.precision", "fp16", "expected auto, bf16 or fp32, got 'fp16'"),
        ("training.eval_steps", 0, "expected a positive integer or 'epoch', got 0"),
        ("training.report_to", 3, "expected a list of logger names (e.g. [tensorboard]) or a string, got 3"),
        ("training.resume_from_checkpoint", 7, "expected true, a checkpoint path or null, got 7"),
        ("optim.lr_scale", {"vision_tower": -1}, "expected a positive number, got -1"),
    ],
)
def test_wrong_types(key, value, expected):
    with pytest.raises(ConfigError) as error:
        load_stage_config("stage2.yaml", {**PATHS, key: value})
    shown = f"{key}.vision_tower" if key == "optim.lr_scale" else key
    assert str(error.value) == f"overrides: {shown}: {expected}"


def test_numbers_written_as_strings_still_load():
    """YAML 1.1 reads 1e-5 (no dot) as a string; the optimizer numbers accept it, as before."""
    assert load_stage_config("stage1.yaml", {**PATHS, "optim.learning_rate": "1e-4"}).optim.learning_rate == 1e-4


def test_the_validator_on_a_plain_mapping_names_its_source():
    with pytest.raises(ConfigError, match=r"^mine: training\.output_dir: required$"):
        build_stage_config({"model": {"preset": "tiny"}, "data": {"train": "t", "val": "v"}}, lambda key: "mine")
