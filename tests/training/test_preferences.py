"""Preference pairs: keyword-replacement and information-filtered negatives, mixing, JSONL round trip, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ccexpert_training.keywords import meaning
from ccexpert_training.preferences import (
    PreferenceError,
    filter_samples,
    filtered_pairs,
    keyword_negatives,
    mix_pairs,
    read_preferences,
    record_rng,
    replacement_pairs,
    similarity,
    write_preferences,
)
from ccexpert_training.records import PairRecord

REFS = (
    "two houses have been built at the top",
    "two buildings are constructed at the top of the scene",
    "a road is built at the top",
)
NO_CHANGE = ("there is no difference", "the two scenes seem identical")


def _records(tmp_path: Path, n: int = 4) -> list[PairRecord]:
    out = []
    for i in range(n):
        captions = NO_CHANGE if i == 0 else REFS
        out.append(PairRecord(f"p{i}", tmp_path / f"a{i}.png", tmp_path / f"b{i}.png", captions))
    return out


def test_keyword_negatives_change_meaning_are_distinct_and_deterministic() -> None:
    for ref in REFS:
        negatives = keyword_negatives(ref, 6, record_rng(0, "replacement", "u"))
        assert len(negatives) == 6 and len(set(negatives)) == 6
        assert all(meaning(n) != meaning(ref) for n in negatives)
        assert negatives == keyword_negatives(ref, 6, record_rng(0, "replacement", "u"))
        assert negatives != keyword_negatives(ref, 6, record_rng(1, "replacement", "u"))
    # categories are visited round-robin: with 4 negatives all four categories appear for a rich caption
    negatives = keyword_negatives("two houses have been built at the top", 4, record_rng(3, "replacement", "v"))
    changed = {
        next(a for a, b in zip(ref.split(), n.split(), strict=True) if a != b)
        for ref, n in [("two houses have been built at the top", n) for n in negatives]
    }
    assert changed == {"two", "houses", "built", "top"}
    assert keyword_negatives("there is no difference", 3, record_rng(0, "r", "u")) == []


def test_similarity_is_one_for_same_key_words_and_orders_by_overlap() -> None:
    assert similarity("two buildings are constructed at the top", REFS) == pytest.approx(1.0, abs=1e-6)
    one_wrong = similarity("two houses have been removed at the top", REFS)
    two_wrong = similarity("two houses have been removed at the bottom", REFS)
    assert 1.0 > one_wrong > two_wrong > 0.0
    assert similarity("the scene looks nice", REFS) == 0.0
    assert similarity("there is no difference", REFS) == 0.0
    # no-change captions compare by meaning (a single key word would give BLEU-2 = 0 and S = 2/3)
    assert similarity("There is no difference.", NO_CHANGE) == 1.0
    assert similarity("two houses are built", NO_CHANGE) == 0.0
    assert filter_samples(["the scene is the same as before", "a road appears"], NO_CHANGE, 0.0, 1.0) == []


def test_filter_keeps_exactly_the_samples_strictly_inside_the_band() -> None:
    samples = [
        "two houses have been built at the top",  # S = 1
        "two houses have been removed at the top",
        "two houses have been removed at the bottom",
        "five lakes disappear on the left",
        "a road is removed at the bottom",
        "the scene looks nice",  # S = 0
        "there is no difference",
    ]
    scores = {s: similarity(s, REFS) for s in samples}
    assert len(set(scores.values())) >= 5
    for tau1, tau2 in [(0.0, 1.0), (0.2, 0.8), (0.3, 0.6)]:
        kept = filter_samples(samples, REFS, tau1, tau2)
        assert [s for s, _ in kept] == [s for s in samples if tau1 < scores[s] < tau2]
        assert all(score == pytest.approx(scores[s]) for s, score in kept)
    # the bounds are strict: a sample exactly at tau1 or at tau2 is dropped
    middle = scores["two houses have been removed at the bottom"]
    assert "two houses have been removed at the bottom" not in [
        s for s, _ in filter_samples(samples, REFS, middle, 0.99)
    ]
    assert "two houses have been removed at the bottom" not in [
        s for s, _ in filter_samples(samples, REFS, 0.01, middle)
    ]
    assert [s for s, _ in filter_samples(samples + samples, REFS, 0.0, 1.0)] == [
        s for s, _ in filter_samples(samples, REFS, 0.0, 1.0)
    ]
    for bad in [(0.5, 0.5), (0.6, 0.4), (-0.1, 0.5), (0.2, 1.5), (float("nan"), 0.5)]:
        with pytest.raises(PreferenceError, match="tau1"):
            filter_samples(samples, REFS, *bad)


def test_filtered_pairs_use_the_sampler_seed_and_references(tmp_path: Path) -> None:
    calls = []

    def sampler(record: PairRecord, k: int, seed: int) -> list[str]:
        calls.append((record.uid, k, seed))
        return ["two houses have been removed at the top", "a lake appears", "two houses are built at the top"][:k]

    records = _records(tmp_path)
    pairs = filtered_pairs(records, sampler, 3, 0.3, 0.8, seed=7)
    assert [c[1] for c in calls] == [3] * 4
    # no-change pair: every change sample scores 0 -> nothing kept; change pairs keep the one-wrong sample only
    assert [p.uid for p in pairs] == ["p1", "p2", "p3"]
    assert all(p.rejected == "two houses have been removed at the top" and p.chosen in REFS for p in pairs)
    assert all(p.source == "filtered" and 0.3 < p.similarity < 0.8 for p in pairs)
    calls.clear()
    assert filtered_pairs(records, sampler, 3, 0.3, 0.8, seed=7) == pairs
    seeds_a = [c[2] for c in calls]
    calls.clear()
    filtered_pairs(records, sampler, 3, 0.3, 0.8, seed=8)
    assert seeds_a != [c[2] for c in calls]
    with pytest.raises(PreferenceError, match="K"):
        filtered_pairs(records, sampler, 0, 0.3, 0.8, seed=7)


def test_mixing_ratio_and_determinism(tmp_path: Path) -> None:
    records = _records(tmp_path, 6)
    replacement = replacement_pairs(records, 2, seed=0)
    assert len(replacement) == 5 * 3 * 2  # 5 change records x 3 references x M=2
    assert all(p.source == "replacement" for p in replacement)
    filtered = [
        p.__class__(p.uid, p.before, p.after, p.chosen, "a lake appears", "filtered", 0.5) for p in replacement[:10]
    ]
    mixed = mix_pairs(replacement, filtered, 0.5, seed=1)
    assert len(mixed) == 20 and sum(p.source == "filtered" for p in mixed) == 10
    mixed = mix_pairs(replacement, filtered, 0.75, seed=1)
    assert len(mixed) == 40 and sum(p.source == "replacement" for p in mixed) == 30
    assert mix_pairs(replacement, filtered, 0.75, seed=1) == mixed
    assert mix_pairs(replacement, filtered, 0.75, seed=2) != mixed
    assert {p.source for p in mix_pairs(replacement, filtered, 1.0, seed=1)} == {"replacement"}
    assert len(mix_pairs(replacement, filtered, 1.0, seed=1, max_pairs=7)) == 7
    assert {p.source for p in mix_pairs(replacement, filtered, 0.0, seed=1)} == {"filtered"}
    with pytest.raises(PreferenceError, match="fraction"):
        mix_pairs(replacement, filtered, 1.5, seed=1)


def test_jsonl_round_trip_and_bad_lines(tmp_path: Path) -> None:
    pairs = replacement_pairs(_records(tmp_path, 3), 1, seed=0)
    out = tmp_path / "prefs" / "p.jsonl"
    assert write_preferences(pairs, out) == len(pairs)
    line = json.loads(out.read_text().splitlines()[0])
    assert set(line) == {"uid", "before", "after", "chosen", "rejected", "source", "similarity"}
    back = read_preferences(out)
    assert [(p.uid, p.chosen, p.rejected) for p in back] == [(p.uid, p.chosen, p.rejected) for p in pairs]
    assert back[0].before.resolve() == pairs[0].before.resolve()
    good = dict(line)
    for bad, message in [
        ("not json", "invalid JSON"),
        (json.dumps([1]), "JSON object"),
        (json.dumps({k: v for k, v in good.items() if k != "rejected"}), "missing key"),
        (json.dumps({**good, "source": "other"}), "source"),
        (json.dumps({**good, "rejected": good["chosen"] + "."}), "the same"),
        (json.dumps({**good, "chosen": ""}), "chosen"),
    ]:
        bad_file = tmp_path / "bad.jsonl"
        bad_file.write_text(json.dumps(good) + "\n" + bad + "\n")
        with pytest.raises(PreferenceError, match=message) as info:
            read_preferences(bad_file)
        assert "bad.jsonl:2" in str(info.value)
    with pytest.raises(PreferenceError, match="not found"):
        read_preferences(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------------------------------------ CLI and sampler


def _records_file(tmp_path: Path) -> Path:
    from ccexpert_training.records import write_records
    from conftest import make_pair
    from PIL import Image

    records = []
    for i, captions in enumerate([REFS, NO_CHANGE, REFS[:1]]):
        before, after = make_pair(i, 48)
        Image.fromarray(before).save(tmp_path / f"b{i}.png")
        Image.fromarray(after).save(tmp_path / f"a{i}.png")
        records.append(PairRecord(f"r{i}", tmp_path / f"b{i}.png", tmp_path / f"a{i}.png", captions))
    path = tmp_path / "records.jsonl"
    write_records(records, path)
    return path


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory) -> Path:
    """The tiny preset at 56 px (16 tokens per image) saved as a checkpoint folder: fast sampling."""
    from ccexpert.presets import PRESETS, build_model, build_tiny_tokenizer

    folder = tmp_path_factory.mktemp("small_model")
    tokenizer = build_tiny_tokenizer()
    vision = dict(PRESETS["tiny"]["vision_config"], image_size=56)
    build_model("tiny", tokenizer, seed=0, vision_config=vision, image_seq_length=16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_cli_replacement_only_writes_m_per_change_reference(tmp_path: Path, capsys) -> None:
    from ccexpert.cli import main

    records = _records_file(tmp_path)
    out = tmp_path / "out" / "prefs.jsonl"
    assert (
        main(
            [
                "preferences",
                "--records",
                str(records),
                "--out",
                str(out),
                "--kinds",
                "replacement",
                "--m",
                "2",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    pairs = read_preferences(out)
    assert len(pairs) == (3 + 1) * 2  # no-change record r1 gives none
    assert all(p.before.is_file() and p.after.is_file() for p in pairs)
    first = out.read_text()
    assert (
        main(
            [
                "preferences",
                "--records",
                str(records),
                "--out",
                str(out),
                "--kinds",
                "replacement",
                "--m",
                "2",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert out.read_text() == first  # deterministic
    assert "8 pairs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kinds", "filtered"], "pass --model"),
        (["--kinds", "other"], "--kinds"),
        (["--tau1", "0.9", "--tau2", "0.2", "--kinds", "replacement"], "tau1"),
        (["--m", "0", "--kinds", "replacement"], "--m"),
    ],
)
def test_cli_rejects_bad_settings(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    from ccexpert.cli import main

    records = _records_file(tmp_path)
    assert main(["preferences", "--records", str(records), "--out", str(tmp_path / "p.jsonl"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p.jsonl").exists()


def test_model_sampler_is_seeded_and_feeds_the_filter(tmp_path: Path, small_model_dir: Path, capsys) -> None:
    from ccexpert.cli import main
    from ccexpert_training.commands.preferences import ModelSampler
    from ccexpert_training.records import read_records

    records = read_records(_records_file(tmp_path))
    sampler = ModelSampler(str(small_model_dir), "cpu", temperature=1.0, top_p=1.0, max_new_tokens=8)
    first = sampler(records[0], 3, seed=5)
    assert len(first) == 3 and all(isinstance(s, str) for s in first)
    assert sampler(records[0], 3, seed=5) == first
    assert sampler(records[0], 3, seed=6) != first
    out = tmp_path / "both.jsonl"
    code = main(
        [
            "preferences",
            "--records",
            str(tmp_path / "records.jsonl"),
            "--out",
            str(out),
            "--model",
            str(small_model_dir),
            "--k",
            "2",
            "--max-new-tokens",
            "8",
            "--device",
            "cpu",
        ]
    )
    captured = capsys.readouterr()
    # the random tiny model writes gibberish: no sample lies inside (tau1, tau2), so the 50/50 mix is empty and the
    # command says why instead of writing a file without the requested share of filtered pairs
    assert code == 2 and "0 filtered candidates" in captured.err and not out.exists()
