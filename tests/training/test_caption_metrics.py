"""LEVIR-CC metrics on hand-checked cases (expected numbers computed independently below, not by the scorers)."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from ccexpert_training.caption_metrics import JSON_KEYS, coco_scores, evaluate_predictions, normalise
from ccexpert_training.records import Prediction, RecordError, read_predictions

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="METEOR 1.5 needs Java")

# METEOR 1.5 English parameters (alpha, beta, gamma, delta) and its function-word weighting, for the hand formula.
ALPHA, BETA, GAMMA, DELTA = 0.85, 0.2, 0.6, 0.75


def test_normalisation_is_lower_and_drop_periods_only():
    assert normalise("The Scene, is the same as before.") == "the scene, is the same as before"
    assert normalise("A.B  c.") == "ab  c"  # no whitespace collapsing, no other punctuation removed


@needs_java
def test_one_sentence_by_hand():
    # hyp "the cat sat on mat" vs ref "the cat sat on the mat":
    # n-gram precisions 5/5, 3/4, 2/3, 1/2; brevity penalty exp(1 - 6/5).
    scores = coco_scores({"a": ["the cat sat on the mat"]}, {"a": "the cat sat on mat"})
    bp = math.exp(1 - 6 / 5)
    precisions = [1.0, 3 / 4, 2 / 3, 1 / 2]
    for n in range(1, 5):
        expected = bp * math.prod(precisions[:n]) ** (1 / n)
        assert scores[f"BLEU-{n}"] == pytest.approx(expected, rel=1e-6)
    # ROUGE-L: LCS 5, P = 5/5, R = 5/6, beta 1.2
    p, r, b2 = 1.0, 5 / 6, 1.2**2
    assert scores["ROUGE-L"] == pytest.approx((1 + b2) * p * r / (r + b2 * p), rel=1e-9)
    # METEOR: all 5 hypothesis words match exactly (P = 1). Reference: content words cat/sat/mat all matched,
    # function words the/on/the -> 2 of 3 matched, so R = (delta*3 + (1-delta)*2) / (delta*3 + (1-delta)*3).
    # Two chunks ("the cat sat on", "mat") over 5 matches.
    recall = (DELTA * 3 + (1 - DELTA) * 2) / (DELTA * 3 + (1 - DELTA) * 3)
    fmean = p * recall / (ALPHA * p + (1 - ALPHA) * recall)
    penalty = GAMMA * (2 / 5) ** BETA
    assert scores["METEOR"] == pytest.approx(fmean * (1 - penalty), abs=1e-4)
    # CIDEr-D on a one-image corpus: idf = log(1) - log(1) = 0 for every n-gram
    assert scores["CIDEr-D"] == 0.0


@needs_java
def test_cider_d_two_images_by_hand():
    # Disjoint vocabularies: every n-gram has df = 1 and idf = log(2). Image a is an exact copy (cosine 1 for
    # n = 1..4, no length penalty) -> 10 x mean(1, 1, 1, 1) = 10; image b shares nothing -> 0. Corpus mean = 5.
    gts = {"a": ["one two three four five six"], "b": ["seven eight nine ten eleven twelve"]}
    res = {"a": "one two three four five six", "b": "zz yy xx ww"}
    assert coco_scores(gts, res)["CIDEr-D"] == pytest.approx(5.0, rel=1e-9)


@needs_java
def test_exact_match_and_reordering_meteor():
    # identical sentences: METEOR 1.5 waives the fragmentation penalty (one chunk spanning both sentences) -> 1
    sentence = "houses appear near roads beside trees"
    scores = coco_scores({"a": [sentence]}, {"a": sentence})
    assert scores["METEOR"] == pytest.approx(1.0, abs=1e-6)
    # same six content words in two chunks ("beside trees" moved first): Fmean = 1, penalty 0.6 * (2/6)^0.2
    swapped = coco_scores({"a": [sentence]}, {"a": "beside trees houses appear near roads"})
    assert swapped["METEOR"] == pytest.approx(1 - GAMMA * (2 / 6) ** BETA, abs=1e-4)
    assert scores["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert scores["ROUGE-L"] == pytest.approx(1.0)


NOCHANGE_REFS = ("There is no difference.", "The scene is the same as before.")


@needs_java
def test_report_dedups_scores_subsets_and_accuracy():
    preds = [
        Prediction("u1", "The scene is the same as before.", NOCHANGE_REFS),  # no-change, correct
        Prediction("u2", "Some houses are built.", ("Some houses are built.",)),  # change, correct
        Prediction("u3", "Some roads appear.", NOCHANGE_REFS),  # truth no-change, predicted change: wrong
        Prediction("u2", "garbage", ("Some houses are built.",)),  # duplicate uid: ignored (first wins)
    ]
    with pytest.warns(UserWarning, match="1 duplicate uid"):
        report = evaluate_predictions(preds)
    assert report.duplicates == 1
    assert report.overall["n"] == 3
    assert report.overall["change_accuracy"] == pytest.approx(200 / 3)
    assert report.change["n"] == 1 and report.no_change["n"] == 2
    # the change subset is one exact 4-word match: BLEU-4 = 100 (x100 scale)
    assert report.change["BLEU-4"] == pytest.approx(100.0, abs=1e-4)
    sm = report.overall
    assert sm["S*m"] == pytest.approx((sm["BLEU-4"] + sm["METEOR"] + sm["ROUGE-L"] + sm["CIDEr-D"]) / 4)
    assert list(report.as_json()) == list(JSON_KEYS)


@needs_java
def test_eval_cli_json_keys_exactly(tmp_path, capsys):
    from ccexpert.cli import main

    path = tmp_path / "pred.jsonl"
    lines = [
        {"uid": "a", "pred": "The scene is the same as before.", "change_caption": list(NOCHANGE_REFS)},
        {"uid": "b", "pred": "A road is built.", "change_caption": ["A road is built.", "A new road appears."]},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["eval", str(path), "--json", "--report", str(tmp_path / "full.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == [
        "n",
        "BLEU-1",
        "BLEU-2",
        "BLEU-3",
        "BLEU-4",
        "METEOR",
        "ROUGE-L",
        "CIDEr-D",
        "S*m",
        "change_accuracy",
    ]
    assert out["n"] == 2 and out["change_accuracy"] == 100.0
    full = json.loads((tmp_path / "full.json").read_text())
    assert full["change"]["n"] == 1 and full["no_change"]["n"] == 1


def test_eval_cli_bad_file_names_line(tmp_path, capsys):
    from ccexpert.cli import main

    path = tmp_path / "pred.jsonl"
    path.write_text('{"uid": "a", "pred": "x", "change_caption": ["y"]}\n{"uid": "b", "pred": "x"}\n')
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'b'" in err and "pred.jsonl:2" in err and "change_caption" in err


@pytest.mark.parametrize(
    "line, message",
    [
        ("not json", "invalid JSON"),
        ('{"pred": "x", "change_caption": ["y"]}', "missing or empty 'uid'"),
        ('{"uid": "a", "pred": 3, "change_caption": ["y"]}', "'pred' must be a string"),
        ('{"uid": "a", "pred": "x", "change_caption": []}', "non-empty list"),
    ],
)
def test_bad_prediction_lines(tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(RecordError, match=message):
        read_predictions(path)


PUBLISHED = os.environ.get("CCEXPERT_PUBLISHED_PREDICTIONS")


@needs_java
@pytest.mark.skipif(
    not PUBLISHED or not Path(PUBLISHED).is_file(),
    reason="set CCEXPERT_PUBLISHED_PREDICTIONS to Meize0729/storage CCExpert/CCExpert_7b_LEVIR-CC_infer_results.txt",
)
def test_reproduces_published_ccexpert_7b_numbers():
    # ccexpert_model.md §5.3: deduplicated to 1929 uids -> 65.48 / 41.82 / 76.54 / 143.28 / 81.78
    with pytest.warns(UserWarning, match="7 duplicate"):
        report = evaluate_predictions(read_predictions(PUBLISHED))
    o = report.overall
    assert o["n"] == 1929
    for key, value in {"BLEU-4": 65.48, "METEOR": 41.82, "ROUGE-L": 76.54, "CIDEr-D": 143.28, "S*m": 81.78}.items():
        assert o[key] == pytest.approx(value, abs=0.01), key
    # The reference's re-score counts only the exact template "The scene is the same as before." as a no-change
    # prediction (921 + 899 = 1820 correct, 94.35%). We count every LEVIR-CC no-change phrasing (ccexpert.nochange):
    # 16 no-change pairs answered "The two scenes seem identical." / "Almost nothing has changed." become correct and
    # 3 changed pairs answered "The two scenes seem identical." become wrong: 1833 correct.
    assert o["change_accuracy"] == pytest.approx(100 * 1833 / 1929, abs=0.01)


def _tiny_records(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _tinydata import write_split

    return write_split(tmp_path, "val", 3, 5)


@needs_java
def test_predict_then_eval_cli(tmp_path, tiny_model_dir, capsys):
    from ccexpert.cli import main

    data = _tiny_records(tmp_path)
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(data), "--model", str(tiny_model_dir), "-o", str(out), "--max-new-tokens", "4"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["uid"] for line in lines] == ["val_000", "val_001", "val_002"]
    assert all(set(line) == {"uid", "pred", "change_caption"} and len(line["change_caption"]) == 5 for line in lines)
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 3


def test_predict_bad_record_named_before_any_work(tmp_path, capsys):
    from ccexpert.cli import main

    data = _tiny_records(tmp_path)
    (tmp_path / "images" / "val" / "val_001_B.png").unlink()
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(data), "--model", str(tmp_path / "no-model"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "record 'val_001'" in err and "after image: file not found" in err
    assert not out.exists()


def test_predict_missing_model_is_a_clear_error(tmp_path, capsys):
    from ccexpert.cli import main

    data = _tiny_records(tmp_path)
    assert main(["predict", str(data), "--model", str(tmp_path / "nope"), "-o", str(tmp_path / "p.jsonl")]) == 2
    assert "cannot load the model" in capsys.readouterr().err


@needs_java
def test_meteor_wrapper_matches_pycocoevalcap():
    """Our JVM wrapper (closes its pipes, restarts when dead) speaks the same protocol as pycocoevalcap's Meteor."""
    import warnings

    from ccexpert_training.caption_metrics import shared_meteor
    from pycocoevalcap.meteor.meteor import Meteor as CocoMeteor

    gts = {
        "a": ["some houses are built along the road", "a row of villas appears"],
        "b": ["there is no difference", "the scene is the same as before"],
        "c": ["many trees are removed and a parking lot appears"],
    }
    res = {
        "a": ["several houses appear beside the road"],
        "b": ["the scene is the same as before"],
        "c": ["a parking lot replaces the trees"],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        coco = CocoMeteor()
        expected, _ = coco.compute_score(gts, res)
        del coco
    assert shared_meteor().compute_score(gts, res) == pytest.approx(expected, abs=1e-12)


@needs_java
def test_no_change_truth_needs_one_no_change_reference():
    """Module contract: a pair is "no change" when ONE of its references is a no-change caption (issue 20: requiring
    all of them survived, since every LEVIR-CC no-change pair has five). A mixed pair answered "no change" is
    right; answered with a change caption it is wrong."""
    from ccexpert_training.caption_metrics import reference_is_no_change

    mixed = ("There is no difference.", "A small shed appears.")
    assert reference_is_no_change(mixed)
    assert not reference_is_no_change(("A small shed appears.", "A road is built."))
    preds = [
        Prediction("m1", "There is no difference.", mixed),  # no-change truth, predicted no change: right
        Prediction("m2", "A small shed appears.", mixed),  # no-change truth, predicted a change: wrong
    ]
    report = evaluate_predictions(preds)
    assert report.overall["change_accuracy"] == pytest.approx(50.0)
    assert report.no_change["n"] == 2 and report.change["n"] == 0
