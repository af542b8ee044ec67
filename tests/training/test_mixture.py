"""Mixtures: repeat counts, flatten vs random_choice sample counts, per-epoch caption draws, bad mixture files."""

from __future__ import annotations

import collections

import pytest
import yaml
from ccexpert_training.dataset import CaptionPairDataset
from ccexpert_training.mixture import MixtureError, load_mixture
from ccexpert_training.records import PairRecord, write_records


def _records(tmp_path, name, count, captions_per_pair):
    records = [
        PairRecord(
            f"{name}{i}",
            tmp_path / "a.png",
            tmp_path / "b.png",
            tuple(f"{name} caption {i}.{j}" for j in range(captions_per_pair)),
        )
        for i in range(count)
    ]
    return write_records(records, tmp_path / f"{name}.jsonl") and tmp_path / f"{name}.jsonl"


def _mixture(tmp_path, spec):
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_repeats_and_flatten_counts(tmp_path):
    _records(tmp_path, "levir", 3, 5)
    _records(tmp_path, "sysu", 2, 1)
    path = _mixture(
        tmp_path,
        {
            "caption_mode": "flatten",
            "datasets": [
                {"name": "levir", "records": "levir.jsonl", "repeat": 6},
                {"name": "sysu", "records": "sysu.jsonl", "repeat": 3},
            ],
        },
    )
    mixture = load_mixture(path)
    samples = mixture.samples()
    assert len(samples) == 6 * 3 * 5 + 3 * 2 * 1
    per_dataset = collections.Counter(s.dataset for s in samples)
    assert per_dataset == {"levir": 90, "sysu": 6}
    # every (pair, caption) appears exactly `repeat` times
    pairs = collections.Counter((s.record.uid, s.caption_index) for s in samples if s.dataset == "levir")
    assert set(pairs.values()) == {6} and len(pairs) == 15
    assert len(mixture.records()) == 5
    assert "levir: 3 pairs x6 (flatten)" in mixture.summary()


def test_random_choice_counts_and_epoch_draws(tmp_path):
    _records(tmp_path, "levir", 4, 5)
    mixture = load_mixture(
        _mixture(tmp_path, {"caption_mode": "random_choice", "datasets": [{"records": "levir.jsonl", "repeat": 2}]})
    )
    samples = mixture.samples()
    assert len(samples) == 2 * 4 and all(s.caption_index is None for s in samples)
    dataset = CaptionPairDataset(samples, seed=42)
    epoch0 = [dataset.caption_for(i) for i in range(len(dataset))]
    assert epoch0 == [dataset.caption_for(i) for i in range(len(dataset))]  # deterministic within an epoch
    draws = set()
    for epoch in range(20):
        dataset.set_epoch(epoch)
        draws.add(dataset.caption_for(0))
    assert len(draws) > 1 and draws <= set(samples[0].record.captions)  # fresh draws across epochs


def test_caption_mode_override_and_per_dataset_mode(tmp_path):
    _records(tmp_path, "a", 2, 3)
    _records(tmp_path, "b", 2, 3)
    spec = {"datasets": [{"records": "a.jsonl"}, {"records": "b.jsonl", "caption_mode": "random_choice"}]}
    assert len(load_mixture(_mixture(tmp_path, spec)).samples()) == 6 + 2
    assert len(load_mixture(_mixture(tmp_path, spec), caption_mode="random_choice").samples()) == 2 + 2
    inline = load_mixture({"datasets": [{"records": str(tmp_path / "a.jsonl"), "repeat": 2}]})
    assert len(inline.samples()) == 12
    assert len(load_mixture(tmp_path / "a.jsonl").samples()) == 6  # a bare JSONL is a one-dataset mixture


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"datasets": []}, "non-empty list"),
        ({"datasets": [{"records": "a.jsonl", "repeat": 0}]}, "'repeat' must be a positive integer"),
        ({"datasets": [{"records": "a.jsonl", "repeat": 1.5}]}, "'repeat' must be a positive integer"),
        ({"datasets": [{"records": "a.jsonl", "caption_mode": "all"}]}, "caption_mode must be one of"),
        ({"datasets": [{"records": "missing.jsonl"}]}, "records file not found"),
        ({"datasets": [{"name": "x"}]}, "exactly one of 'records'"),
        ({"datasets": [{"records": "a.jsonl", "weight": 2}]}, "unknown keys \\['weight'\\]"),
        ({"datasets": [{"records": "a.jsonl"}], "shuffle": True}, "unknown keys \\['shuffle'\\]"),
    ],
)
def test_bad_mixtures(tmp_path, spec, message):
    _records(tmp_path, "a", 1, 1)
    with pytest.raises(MixtureError, match=message):
        load_mixture(_mixture(tmp_path, spec))


def test_empty_caption_record_in_mixture(tmp_path):
    (tmp_path / "e.jsonl").write_text('{"uid": "e1", "before": "a.png", "after": "b.png", "captions": []}\n')
    with pytest.raises(MixtureError, match="record 'e1'.*empty caption list"):
        load_mixture({"datasets": [{"records": str(tmp_path / "e.jsonl")}]})


def test_dataset_raises_on_bad_pair_never_substitutes(tmp_path):
    _records(tmp_path, "a", 2, 1)  # images a.png / b.png do not exist
    dataset = CaptionPairDataset(load_mixture(tmp_path / "a.jsonl").samples())
    with pytest.raises(Exception, match="record 'a1'.*before image: file not found"):
        dataset[1]


def test_cache_images_decodes_each_record_once(tmp_path):
    from PIL import Image

    for name, value in (("a.png", 10), ("b.png", 200)):
        Image.new("RGB", (8, 8), (value, value, value)).save(tmp_path / name)
    _records(tmp_path, "a", 2, 1)
    samples = load_mixture(tmp_path / "a.jsonl").samples()
    cached, plain = CaptionPairDataset(samples, cache_images=True), CaptionPairDataset(samples)
    first = cached[0]
    plain[0]
    (tmp_path / "a.png").unlink()  # a cached record no longer touches its files; an uncached one still fails loudly
    again = cached[0]
    assert again["before"] is first["before"] and again["after"].getpixel((0, 0)) == (200, 200, 200)
    with pytest.raises(Exception, match="record 'a0'.*before image: file not found"):
        plain[0]
    with pytest.raises(Exception, match="record 'a1'.*before image: file not found"):
        cached[1]  # never decoded before the file went missing
