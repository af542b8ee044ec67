"""The training commands reach `ccexpert` through the `ccexpert.commands` entry-point group (backend/ccexpert/cli.py):
every registered command resolves, `ccexpert --help` lists them without importing them, and a missing registration
is reported as such."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from ccexpert import cli

REPO = Path(__file__).resolve().parents[2]
TRAINING_COMMANDS = {"build-dataset", "eval", "predict", "preferences", "synth", "train", "train-demo"}


def test_pyproject_registers_the_training_commands_and_they_are_installed():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["ccexpert.commands"]
    assert set(declared) == TRAINING_COMMANDS
    assert cli.discovered_commands() == dict(sorted(declared.items())), "re-install: pip install -e ."


def test_the_backend_table_names_no_training_module():
    assert not any(module.startswith("ccexpert_training") for module, _ in cli.COMMANDS.values())
    assert not TRAINING_COMMANDS & set(cli.COMMANDS)


@pytest.mark.parametrize("name", sorted(TRAINING_COMMANDS))
def test_every_training_command_resolves(name, capsys):
    module_name = cli.discovered_commands()[name]
    module = importlib.import_module(module_name)
    assert callable(module.add_parser) and callable(module.run)
    assert isinstance(module.HELP, str) and module.HELP
    assert cli.module_help(module_name) == module.HELP  # what --help shows, read without importing
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    assert f"usage: ccexpert {name}" in capsys.readouterr().out


def test_train_help_shows_its_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--set KEY=VALUE" in out and "--nproc" in out


def test_top_level_help_lists_every_command_without_importing_them():
    code = (
        "import sys\nfrom ccexpert.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('IMPORTED', sorted(m for m in sys.modules if m.startswith('ccexpert_training.commands.')),"
        " 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    for name in TRAINING_COMMANDS | set(cli.COMMANDS):
        assert f"    {name}" in out
    assert "train a stage from a YAML config" in out and "score predictions with the LEVIR-CC protocol" in out
    assert "IMPORTED [] False" in out


def test_without_registered_commands_a_training_command_says_the_project_is_not_installed(monkeypatch, capsys):
    monkeypatch.setattr(cli, "distributions", lambda: [])
    assert cli.main(["train", "--config", "stage1.yaml"]) == 2
    err = capsys.readouterr().err
    assert "'train' is not a backend command" in err and "'ccexpert.commands' entry-point group" in err
    assert "pip install -e" in err and "invalid choice" not in err
    assert cli.main([]) == 0  # the backend commands still work


def test_an_unknown_command_is_still_an_invalid_choice(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["trian"])
    assert exit_.value.code == 2
    assert "invalid choice: 'trian'" in capsys.readouterr().err
