"""``ccexpert facts``: one JSON line per caption, in input order, and clear errors for bad files."""

from __future__ import annotations

import json

from ccexpert.cli import main


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_arguments_then_file_in_input_order(tmp_path, capsys):
    f = tmp_path / "captions.txt"
    f.write_text("the scene is the same as before\n\n  two houses are removed at the top  \n", encoding="utf-8")
    assert main(["facts", "the trees are replaced by a house", "--file", str(f)]) == 0
    out = lines(capsys)
    assert [o["caption"] for o in out] == [
        "the trees are replaced by a house",
        "the scene is the same as before",
        "two houses are removed at the top",
    ]
    assert [o["changed"] for o in out] == [True, False, True]
    assert [(x["object"], x["action"]) for x in out[0]["facts"]] == [
        ("vegetation", "disappeared"),
        ("building", "appeared"),
    ]
    assert out[1]["facts"] == []
    assert out[2]["facts"] == [
        {
            "object": "building",
            "action": "disappeared",
            "count": 2,
            "quantity": None,
            "where": ["top_left", "top", "top_right"],
            "word": "houses",
        }
    ]


def test_a_caption_of_unknown_words_is_a_line_with_no_facts(capsys):
    assert main(["facts", "blorp zing"]) == 0
    assert lines(capsys) == [{"caption": "blorp zing", "changed": True, "facts": []}]


def test_missing_file(tmp_path, capsys):
    assert main(["facts", "--file", str(tmp_path / "nope.txt")]) == 2
    err = capsys.readouterr()
    assert "no such file" in err.err and "nope.txt" in err.err and err.out == ""


def test_empty_file_and_no_input(tmp_path, capsys):
    f = tmp_path / "empty.txt"
    f.write_text("\n  \n", encoding="utf-8")
    assert main(["facts", "--file", str(f)]) == 2
    assert "holds no caption" in capsys.readouterr().err
    assert main(["facts"]) == 2
    assert "give captions" in capsys.readouterr().err


def test_non_utf8_file_is_refused_and_nothing_is_printed(tmp_path, capsys):
    f = tmp_path / "latin1.txt"
    f.write_bytes("a house is built\ntwo caf\u00e9s are removed\n".encode("latin-1"))
    assert main(["facts", "--file", str(f)]) == 2
    err = capsys.readouterr()
    assert "not UTF-8" in err.err and err.out == ""


def test_folder_instead_of_file(tmp_path, capsys):
    assert main(["facts", "--file", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
