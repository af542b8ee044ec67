"""bench/mutants.py stops on a stale mutant (issue 30): a snippet that no longer matches the code tests nothing,
and two of them had gone unnoticed ("31 mutants, all killed" no longer held and nothing said so)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mutants", REPO / "bench" / "mutants.py")
mutants = importlib.util.module_from_spec(_spec)
sys.modules["mutants"] = mutants  # dataclasses look their module up
_spec.loader.exec_module(mutants)


def test_stale_snippets_and_missing_tests_are_named(tmp_path):
    (tmp_path / "code.py").write_text("x = 1\ny = 1\nx = 1\n")
    (tmp_path / "test_code.py").write_text("")
    good = mutants.M("good", "code.py", "y = 1", "y = 2", ["test_code.py::test_y"])
    gone = mutants.M("gone", "code.py", "z = 1", "z = 2", ["test_code.py"])
    twice = mutants.M("twice", "code.py", "x = 1", "x = 2", ["test_code.py"])
    same = mutants.M("same", "code.py", "y = 1", "y = 1", ["test_code.py"])
    no_test = mutants.M("no test", "code.py", "y = 1", "y = 3", ["test_other.py::test_y"])
    no_file = mutants.M("no file", "missing.py", "y = 1", "y = 3", ["test_code.py"])
    assert mutants.stale([good], tmp_path) == []
    problems = mutants.stale([good, gone, twice, same, no_test, no_file], tmp_path)
    assert problems == [
        "gone: snippet found 0 times in code.py (update it with the code)",
        "twice: snippet found 2 times in code.py (update it with the code)",
        "same: the replacement equals the snippet",
        "no test: no test file test_other.py",
        "no file: snippet found 0 times in missing.py (update it with the code)",
    ]


def test_a_stale_mutant_stops_the_run_before_any_test(monkeypatch, capsys):
    stale = mutants.M("stale one", "bench/mutants.py", "this text is in no file" + "!", "x", ["tests/tooling"])
    monkeypatch.setattr(mutants, "MUTANTS", [stale])
    monkeypatch.setattr(mutants, "copy_checkout", lambda target: (_ for _ in ()).throw(AssertionError("copied")))
    assert mutants.main([]) == 2
    err = capsys.readouterr().err
    assert "1 stale mutant(s); nothing was run" in err and "stale one: snippet found 0 times" in err
    assert mutants.main(["--list"]) == 2  # listing says so too


def test_every_shipped_mutant_still_matches_the_code():
    """A refactor that moves a mutated line must move its mutant too: ``--list`` exits 2 naming any stale one."""
    import subprocess

    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "mutants.py"), "--list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
