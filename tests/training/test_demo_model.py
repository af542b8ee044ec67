"""The shipped demo model (backend/ccexpert/demo_model): it loads as the default model, says it is a demo, and tells
generated changed pairs from unchanged ones (pairs of a seed it was never trained or selected on)."""

from __future__ import annotations

import json

import pytest
from ccexpert.engine import CaptionEngine
from ccexpert.nochange import is_no_change
from ccexpert.paths import DEMO_MODEL_DIR
from ccexpert_training.synth import make_pair

UNSEEN_SEED = 4242  # neither the training seed (0) nor the test seed (1000) of `ccexpert train-demo`


@pytest.fixture(scope="module")
def engine():
    return CaptionEngine.from_pretrained(DEMO_MODEL_DIR, device="cpu")


def test_files_and_card():
    names = {p.name for p in DEMO_MODEL_DIR.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "generation_config.json",
        "model_card.json",
        "README.md",
        "eval.json",
    } <= names
    assert not any(n.endswith((".bin", ".pt", ".pth", ".pkl")) for n in names)  # never pickles
    size = sum(p.stat().st_size for p in DEMO_MODEL_DIR.iterdir())
    assert size < 10 * 2**20  # a few MB
    card = json.loads((DEMO_MODEL_DIR / "model_card.json").read_text())
    assert card["demo"] is True
    assert "not a model for real imagery" in (DEMO_MODEL_DIR / "README.md").read_text()


def test_default_model_is_the_demo(engine, monkeypatch):
    monkeypatch.delenv("CCEXPERT_MODEL", raising=False)
    from ccexpert.paths import default_model_dir

    assert default_model_dir() == DEMO_MODEL_DIR
    info = engine.info()
    assert info["demo"] is True and info["chip_size"] == 384


def test_changed_and_unchanged_pairs_get_different_captions(engine):
    changed = [make_pair(UNSEEN_SEED, i, changed=True) for i in range(6)]
    unchanged = [make_pair(UNSEEN_SEED, 100 + i, changed=False) for i in range(6)]
    results = engine.caption([(p.before, p.after) for p in changed + unchanged], max_new_tokens=32)
    said_changed = [r.changed for r in results]
    assert all(r.changed == (not is_no_change(r.caption)) for r in results)
    # most changed pairs are described as changes and most unchanged ones as "no change"
    assert sum(said_changed[:6]) >= 4, [r.caption for r in results[:6]]
    assert sum(said_changed[6:]) <= 2, [r.caption for r in results[6:]]
    assert {r.caption for r in results[:6]} != {r.caption for r in results[6:]}
    assert all(0.0 <= r.confidence <= 1.0 for r in results)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "10,20"], "--steps expects three positive integers"),
        (["--steps", "10,0,5"], "--steps expects three positive integers"),
        (["--seed", "3", "--test-seed", "3"], "--test-seed must differ from --seed"),
        (["--two-changes", "1.2"], "--two-changes must be a share in [0, 1]"),
    ],
)
def test_train_demo_rejects_bad_arguments(tmp_path, capsys, argv, message):
    from ccexpert.cli import main

    code = main(["train-demo", "--out", str(tmp_path / "m"), "--work", str(tmp_path / "w"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_train_demo_refuses_to_overwrite_stages(tmp_path, capsys):
    from ccexpert.cli import main

    (tmp_path / "w" / "stage1").mkdir(parents=True)
    assert main(["train-demo", "--out", str(tmp_path / "m"), "--work", str(tmp_path / "w")]) == 2
    assert "pass --force" in capsys.readouterr().err


def test_shipped_scores_reproduce_and_meet_the_targets(engine, tmp_path, monkeypatch):
    """Regenerate the card's test split (its seed, never trained or selected on), caption it with the shipped model
    and score it: the numbers in eval.json must come back, and they must meet the demo's targets (change/no-change
    accuracy >= 95 %, S*m >= 2x always answering "no change")."""
    from ccexpert_training.caption_metrics import evaluate_predictions
    from ccexpert_training.records import Prediction, read_records
    from ccexpert_training.synth import write_benchmark
    from ccexpert_training.synth.baselines import always_no_change

    card = json.loads((DEMO_MODEL_DIR / "eval.json").read_text())
    write_benchmark(
        tmp_path, n=card["data"]["test_pairs"] * 10, seed=card["data"]["test_seed"], splits=("test",), workers=2
    )
    records = read_records(tmp_path / "test.jsonl")
    assert len(records) == card["data"]["test_pairs"]
    monkeypatch.setattr(engine, "wording", "scene")  # scored against references that say "the scene"
    results = engine.caption([r.load_images() for r in records])
    model = evaluate_predictions(
        [Prediction(r.uid, res.caption, tuple(r.captions)) for r, res in zip(records, results, strict=True)]
    ).overall
    baseline = evaluate_predictions(always_no_change(records)).overall
    recorded = card["eval"]["demo model"]
    assert model["S*m"] == pytest.approx(recorded["S*m"], abs=0.5)
    assert model["change_accuracy"] == pytest.approx(recorded["change_accuracy"], abs=1.0)
    assert baseline["S*m"] == pytest.approx(card["eval"]["always no change"]["S*m"], abs=0.01)
    assert model["change_accuracy"] >= 95.0
    assert model["S*m"] >= 2 * baseline["S*m"], (model["S*m"], baseline["S*m"])
