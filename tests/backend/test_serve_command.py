"""`ccexpert serve` flags that go wrong are refused with exit 2 before anything starts (no model, no Ray)."""

from __future__ import annotations

import pytest
from ccexpert.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--replicas", "2"], "go with --ray"),
        (["serve", "--autoscale", "1:2"], "go with --ray"),
        (["serve", "--ray-address", "auto"], "go with --ray"),
        (["serve", "--ray", "--autoscale", "3:1"], "0 <= MIN <= MAX"),
        (["serve", "--ray", "--autoscale", "many"], "MIN:MAX"),
        (["serve", "--ray", "--replicas", "0"], "replicas"),
    ],
)
def test_bad_scale_out_flags_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_replicas_and_autoscale_together_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--ray", "--replicas", "2", "--autoscale", "1:2"])
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err
