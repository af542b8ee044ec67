"""The resume policy (issue 24 finding 3): no readable fingerprint is a reason to refuse; a damaged file is named."""

from __future__ import annotations

import json
import sqlite3

from ccexpert_changes.core.output_contract import check_fingerprint, damage

CURRENT = {"bands": "1,2,3", "chip_size": 384, "grid_hash": "abcd1234", "model": "echo 1"}


def test_a_matching_fingerprint_has_no_problems():
    assert check_fingerprint(json.dumps(CURRENT), CURRENT).problems == []


def test_a_different_fingerprint_names_the_item():
    check = check_fingerprint(json.dumps({**CURRENT, "chip_size": 256}), CURRENT)
    assert check.readable and check.problems == ["chip size: 256 then, 384 now"]


def test_no_fingerprint_is_a_problem_not_a_match():
    for text in (None, "", "  ", "{not json", "[1, 2]", json.dumps({"unrelated": 1})):
        check = check_fingerprint(text, CURRENT)
        assert not check.readable and len(check.problems) == 1 and "cannot be checked" in check.problems[0]


def test_damage_is_none_for_a_sound_file_and_named_for_a_broken_one(tmp_path):
    path = tmp_path / "x.gpkg"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (a)")
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 200,)] * 100)
    assert damage(path) is None
    (tmp_path / "junk.gpkg").write_bytes(b"not a database at all" * 300)
    assert "not a database" in (damage(tmp_path / "junk.gpkg") or "")


def test_staging_names_promotes_and_cleans_up_after_dead_runs(tmp_path):
    import os
    import subprocess
    import sys

    from ccexpert_changes.core.output_contract import partial_path, promote, remove_stale_partials

    target = tmp_path / "o.gpkg"
    target.write_bytes(b"old")
    mine = partial_path(target)
    assert mine.parent == tmp_path and mine.name.startswith(f".o.gpkg.{os.getpid()}-")
    mine.write_bytes(b"new")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / f".o.gpkg.{int(dead.stdout)}-abcd1234.partial.gpkg"
    left.write_bytes(b"killed run")
    (tmp_path / f"{left.name}-journal").write_bytes(b"j")
    assert remove_stale_partials(target) == [left]  # ours (alive) stays
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "o.gpkg"])
    promote(mine, target)
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["o.gpkg"]


_KILLED_MID_TRANSACTION = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA cache_size = 2")  # spill changed pages to the file before commit: the journal becomes hot
db.execute("CREATE TABLE t (a)")
db.executemany("INSERT INTO t VALUES (?)", [("committed",)] * 3)
db.commit()
db.execute("BEGIN")
db.executemany("INSERT INTO t VALUES (?)", [("x" * 200,)] * 5000)
db.execute("DELETE FROM t WHERE a = 'committed'")
os.kill(os.getpid(), 9)
"""


def test_a_run_killed_inside_a_transaction_is_rolled_back_not_called_damaged(tmp_path):
    """CI found it (seed 76221): describe SIGKILLed while writing left a hot journal; a read-only check then failed
    with "attempt to write a readonly database" and --resume refused a sound file as damaged."""
    import subprocess
    import sys

    path = tmp_path / "o.gpkg"
    subprocess.run([sys.executable, "-c", _KILLED_MID_TRANSACTION, str(path)], check=False)
    journal = tmp_path / "o.gpkg-journal"
    assert journal.exists() and journal.stat().st_size > 512  # the hot journal the kill left
    uri = path.absolute().as_uri() + "?mode=ro"
    try:
        with sqlite3.connect(uri, uri=True) as db:
            db.execute("SELECT COUNT(*) FROM t").fetchall()
        raise AssertionError("a read-only open succeeded: the journal was not hot, the test proves nothing")
    except sqlite3.OperationalError as exc:
        assert "readonly" in str(exc)
    assert damage(path) is None
    with sqlite3.connect(uri, uri=True) as db:  # the last commit, intact; the killed transaction gone
        assert db.execute("SELECT a, COUNT(*) FROM t GROUP BY a").fetchall() == [("committed", 3)]
