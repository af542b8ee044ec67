"""Scores of a captioner on synthetic test splits of given seeds: the LEVIR-CC protocol, the always-"no change"
baseline on the same pairs, and a counting accuracy.

Counting accuracy: over changed pairs whose generator facts name exactly one countable kind of object (houses,
roads, parking lots, ponds; not woods or grass), the share whose caption names that object with the generator's
quantity ("a", "two" ... "five", "several" for 6-7, "many" for 8 or more, as the caption grammar words it).
A caption that names the object without a quantity, or names another object, counts as wrong.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .caption_metrics import evaluate_predictions
from .maskcaption.render import MASS_CLASSES, NOUNS, quantity_word
from .records import Prediction, read_records
from .synth import write_benchmark
from .synth.baselines import always_no_change

QUANTITY_WORDS = {
    "a": "a",
    "an": "a",
    "one": "a",
    "two": "two",
    "three": "three",
    "four": "four",
    "five": "five",
    "several": "several",
    "many": "many",
}

Captioner = Callable[[Sequence[tuple[Image.Image, Image.Image]]], list[str]]  # as PairRecord.load_images gives


@dataclass(frozen=True)
class SplitScores:
    seed: int
    pairs: int
    model: dict[str, float]  # BLEU-4 ... S*m, change_accuracy
    baseline: dict[str, float]  # always "no change" on the same pairs
    counting_accuracy: float | None  # percent, None when no pair qualifies
    counted_pairs: int

    @property
    def s_m_ratio(self) -> float:
        return self.model["S*m"] / self.baseline["S*m"]

    def to_dict(self) -> dict:
        return {
            "seed": self.seed,
            "pairs": self.pairs,
            "model": self.model,
            "always_no_change": self.baseline,
            "s_m_ratio": round(self.s_m_ratio, 3),
            "counting_accuracy": self.counting_accuracy,
            "counted_pairs": self.counted_pairs,
        }


def caption_quantity(caption: str, cls: str) -> str | None:
    """The quantity word the caption puts before a noun of class `cls` ("a", "two", ..., "many"), else None."""
    nouns = sorted({word for pair in NOUNS[cls] for word in pair}, key=len, reverse=True)
    pattern = rf"\b({'|'.join(QUANTITY_WORDS)})\s+(?:[a-z]+\s+)?({'|'.join(map(re.escape, nouns))})\b"
    found = re.search(pattern, caption.lower())
    return QUANTITY_WORDS[found.group(1)] if found else None


def expected_quantity(facts: dict) -> tuple[str, str] | None:
    """(class, quantity word) when the facts hold exactly one countable kind of change, else None."""
    countable = [f for f in facts.get("facts", []) if f["cls"] not in MASS_CLASSES and f["cls"] in NOUNS]
    if len(countable) != 1:
        return None
    return countable[0]["cls"], quantity_word(int(countable[0]["count"]))


def score_split(
    captioner: Captioner, seed: int, pairs: int = 200, workdir: Path | None = None, workers: int = 2
) -> SplitScores:
    """Generate the test split of `seed` (`pairs` pairs, the 10 % test share of a 10x benchmark, as
    `ccexpert train-demo` does), caption it and score it."""
    with tempfile.TemporaryDirectory(prefix=f"ccexpert_eval_{seed}_") as tmp:
        out = Path(workdir or tmp)
        write_benchmark(out, n=pairs * 10, seed=seed, splits=("test",), workers=workers)
        records = read_records(out / "test.jsonl")
        facts = {row["uid"]: row for row in map(json.loads, (out / "facts.jsonl").read_text().splitlines())}
        captions = captioner([r.load_images() for r in records])
    predictions = [Prediction(r.uid, c, tuple(r.captions)) for r, c in zip(records, captions, strict=True)]
    model = evaluate_predictions(predictions).overall
    baseline = evaluate_predictions(always_no_change(records)).overall
    hits = counted = 0
    for record, caption in zip(records, captions, strict=True):
        expected = expected_quantity(facts[record.uid]) if record.changed else None
        if expected is None:
            continue
        counted += 1
        hits += caption_quantity(caption, expected[0]) == expected[1]
    return SplitScores(
        seed,
        len(records),
        _rounded(model),
        _rounded(baseline),
        round(100.0 * hits / counted, 2) if counted else None,
        counted,
    )


def _rounded(scores: dict) -> dict[str, float]:
    return {k: round(float(v), 2) for k, v in scores.items()}


__all__ = ["SplitScores", "caption_quantity", "expected_quantity", "score_split"]
