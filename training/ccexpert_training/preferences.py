"""RSICP-style preference pairs for DNPO: a reference caption (chosen) against a hard negative (rejected).

Two kinds of negatives (``../shared/reference/rsiccllm.md``, "DNPO"):

- **keyword replacement** (controlled): one key word of a reference is swapped for a word of the same category and
  grammatical slot but another meaning (``ccexpert_training.keywords``), ``M`` negatives per change reference.
  No-change references have no key word to swap and give none;
- **information-filtered** (on-policy): ``K`` captions sampled from the current model are reduced to key words and
  kept as rejected only when ``tau1 < S < tau2``, S = mean(BLEU-1, BLEU-2, ROUGE-1) against the references' key
  words: below tau1 a sample is trivially wrong (nothing to learn), above tau2 it is nearly correct (a false
  negative).

Everything is deterministic for a seed: each record draws from its own generator seeded by (seed, kind, uid), so a
record's pairs do not depend on which other records are in the set. The output is a JSONL file, one pair a line::

    {"uid", "before", "after", "chosen", "rejected", "source": "replacement" | "filtered", "similarity": float | null}

with image paths relative to the file, as in the training records.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ccexpert.nochange import is_no_change
from pycocoevalcap.bleu.bleu_scorer import BleuScorer

from ccexpert_training.keywords import CATEGORIES, apply_swap, key_words, meaning, swap_candidates, tokenize
from ccexpert_training.records import PairRecord, iter_jsonl, write_jsonl

SOURCES = ("replacement", "filtered")
PREFERENCE_KEYS = ("uid", "before", "after", "chosen", "rejected", "source", "similarity")


class PreferenceError(ValueError):
    """A preference file or setting that cannot be used; the message names the file, line or setting."""


@dataclass(frozen=True)
class PreferencePair:
    """One DNPO training example: the same before/after images with a preferred and a dispreferred caption."""

    uid: str
    before: Path
    after: Path
    chosen: str
    rejected: str
    source: str
    similarity: float | None = None

    def to_json(self, relative_to: Path | None = None) -> dict:
        def path(p: Path) -> str:
            if relative_to is None:
                return str(p)
            try:
                return str(Path(p).resolve().relative_to(relative_to.resolve()).as_posix())
            except ValueError:
                return str(Path(p).resolve())

        return {
            "uid": self.uid,
            "before": path(self.before),
            "after": path(self.after),
            "chosen": self.chosen,
            "rejected": self.rejected,
            "source": self.source,
            "similarity": self.similarity,
        }


def record_rng(seed: int, kind: str, uid: str) -> random.Random:
    """A generator private to one record and one negative kind (stable across runs and Python versions)."""
    digest = hashlib.sha256(f"{seed}\0{kind}\0{uid}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# --------------------------------------------------------------------------------------------- keyword replacement


def keyword_negatives(caption: str, m: int, rng: random.Random) -> list[str]:
    """Up to ``m`` distinct meaning-changing single-swap variants of ``caption`` (lower case, no final period).

    Categories are visited round-robin in a random order so that verb, direction and quantity swaps are not drowned
    by the far more numerous object swaps.
    """
    if m < 0:
        raise PreferenceError(f"M (negatives per reference) must be >= 0, got {m}")
    if is_no_change(caption):
        return []
    tokens = tokenize(caption)
    by_category = {c: swap_candidates(tokens, (c,)) for c in CATEGORIES}
    order = [c for c in CATEGORIES if by_category[c]]
    rng.shuffle(order)
    for category in order:
        rng.shuffle(by_category[category])
    original = meaning(caption)
    negatives: list[str] = []
    while len(negatives) < m and order:
        for category in list(order):
            if len(negatives) == m:
                break
            if not by_category[category]:
                order.remove(category)
                continue
            candidate = apply_swap(tokens, by_category[category].pop())
            if candidate not in negatives and meaning(candidate) != original:
                negatives.append(candidate)
    return negatives


def replacement_pairs(records: Iterable[PairRecord], m: int, seed: int) -> list[PreferencePair]:
    """``m`` keyword-replacement negatives for every change reference of every record."""
    pairs: list[PreferencePair] = []
    for record in records:
        rng = record_rng(seed, "replacement", record.uid)
        for reference in record.captions:
            for negative in keyword_negatives(reference, m, rng):
                pairs.append(
                    PreferencePair(record.uid, record.before, record.after, reference, negative, "replacement")
                )
    return pairs


# ---------------------------------------------------------------------------------------- information filtering


def _rouge1(hypothesis: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """ROUGE-1 F1 (clipped unigram overlap), the best over the references."""
    best = 0.0
    hyp = Counter(hypothesis)
    for reference in references:
        overlap = sum((hyp & Counter(reference)).values())
        if overlap:
            precision, recall = overlap / len(hypothesis), overlap / len(reference)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def similarity(sample: str, references: Sequence[str]) -> float:
    """S = mean(BLEU-1, BLEU-2, ROUGE-1) between the key words of ``sample`` and those of ``references``.

    BLEU is pycocoevalcap's sentence BLEU (clipped n-gram precision, closest-reference brevity penalty), the same
    definition ``ccexpert eval`` uses for corpora. A sample without key words scores 0. No-change captions are
    compared by meaning: 1 when sample and references all say "no change", 0 when only one side does (their single
    key word would otherwise give BLEU-2 = 0 and S = 2/3, making a correct no-change sample a "rejected" one).
    """
    sample_unchanged = is_no_change(sample)
    references_unchanged = [is_no_change(r) for r in references]
    if sample_unchanged or any(references_unchanged):
        return 1.0 if sample_unchanged and all(references_unchanged) else 0.0
    hypothesis = key_words(sample)
    reference_keys = [key_words(r) for r in references]
    reference_keys = [r for r in reference_keys if r]
    if not hypothesis or not reference_keys:
        return 0.0
    scorer = BleuScorer(n=2)
    scorer += (" ".join(hypothesis), [" ".join(r) for r in reference_keys])
    _, per_sentence = scorer.compute_score(option="closest", verbose=0)
    bleu1, bleu2 = per_sentence[0][0], per_sentence[1][0]
    return (bleu1 + bleu2 + _rouge1(hypothesis, reference_keys)) / 3.0


def check_thresholds(tau1: float, tau2: float) -> None:
    if not (math.isfinite(tau1) and math.isfinite(tau2)) or not 0.0 <= tau1 < tau2 <= 1.0:
        raise PreferenceError(f"need 0 <= tau1 < tau2 <= 1, got tau1={tau1}, tau2={tau2}")


def filter_samples(
    samples: Sequence[str], references: Sequence[str], tau1: float, tau2: float
) -> list[tuple[str, float]]:
    """The samples with tau1 < S < tau2 (strict on both sides), with their S, in order and without duplicates."""
    check_thresholds(tau1, tau2)
    kept: list[tuple[str, float]] = []
    seen: set[str] = set()
    for sample in samples:
        text = " ".join(tokenize(sample))
        if not text or text in seen:
            continue
        seen.add(text)
        score = similarity(sample, references)
        if tau1 < score < tau2:
            kept.append((sample, score))
    return kept


Sampler = Callable[[PairRecord, int, int], list[str]]
"""(record, k, seed) -> k captions sampled from the current model for the record's image pair."""


def filtered_pairs(
    records: Iterable[PairRecord], sampler: Sampler, k: int, tau1: float, tau2: float, seed: int
) -> list[PreferencePair]:
    """Information-filtered negatives: for each kept sample, the chosen caption is a reference drawn at random."""
    if k < 1:
        raise PreferenceError(f"K (samples per pair) must be >= 1, got {k}")
    check_thresholds(tau1, tau2)
    pairs: list[PreferencePair] = []
    for record in records:
        rng = record_rng(seed, "filtered", record.uid)
        samples = sampler(record, k, rng.randrange(2**31))
        for sample, score in filter_samples(samples, record.captions, tau1, tau2):
            pairs.append(
                PreferencePair(
                    record.uid,
                    record.before,
                    record.after,
                    rng.choice(record.captions),
                    sample,
                    "filtered",
                    round(score, 6),
                )
            )
    return pairs


# ----------------------------------------------------------------------------------------------------- mixing


def mix_pairs(
    replacement: Sequence[PreferencePair],
    filtered: Sequence[PreferencePair],
    replacement_fraction: float,
    seed: int,
    max_pairs: int | None = None,
) -> list[PreferencePair]:
    """The largest set (at most ``max_pairs``) in which a ``replacement_fraction`` share comes from keyword
    replacement and the rest from filtering, each part a seeded random subset; the result is shuffled."""
    r = replacement_fraction
    if not 0.0 <= r <= 1.0:
        raise PreferenceError(f"replacement fraction must be in [0, 1], got {r}")
    if max_pairs is not None and max_pairs < 0:
        raise PreferenceError(f"max_pairs must be >= 0, got {max_pairs}")
    limits = []
    if r > 0:
        limits.append(len(replacement) / r)
    if r < 1:
        limits.append(len(filtered) / (1 - r))
    total = math.floor(min(limits) + 1e-9)
    if max_pairs is not None:
        total = min(total, max_pairs)
    n_replacement = min(len(replacement), round(r * total))
    n_filtered = min(len(filtered), total - n_replacement)
    rng = random.Random(seed)
    chosen = rng.sample(list(replacement), n_replacement) + rng.sample(list(filtered), n_filtered)
    rng.shuffle(chosen)
    return chosen


# --------------------------------------------------------------------------------------------------------- I/O


def write_preferences(pairs: Iterable[PreferencePair], path: str | Path) -> int:
    """Write pairs as JSONL with image paths relative to the file's folder; returns the number written."""
    path = Path(path)
    return write_jsonl((pair.to_json(relative_to=path.parent) for pair in pairs), path)


def read_preferences(path: str | Path) -> list[PreferencePair]:
    """Read a preference JSONL file; a malformed line raises PreferenceError naming the file and line."""
    path = Path(path)
    pairs: list[PreferencePair] = []
    for where, obj in iter_jsonl(path, "preference", PreferenceError):
        missing = [key for key in ("uid", "before", "after", "chosen", "rejected", "source") if key not in obj]
        if missing:
            raise PreferenceError(f"{where}: missing key(s) {', '.join(missing)}")
        for key in ("uid", "before", "after", "chosen", "rejected"):
            if not isinstance(obj[key], str) or not obj[key].strip():
                raise PreferenceError(f"{where}: {key!r} must be a non-empty string, got {obj[key]!r}")
        if obj["source"] not in SOURCES:
            raise PreferenceError(f"{where}: source must be one of {SOURCES}, got {obj['source']!r}")
        if " ".join(tokenize(obj["chosen"])) == " ".join(tokenize(obj["rejected"])):
            raise PreferenceError(f"{where}: chosen and rejected captions are the same: {obj['chosen']!r}")
        score = obj.get("similarity")
        if score is not None and not isinstance(score, (int, float)):
            raise PreferenceError(f"{where}: similarity must be a number or null, got {score!r}")
        pairs.append(
            PreferencePair(
                obj["uid"],
                path.parent / obj["before"],
                path.parent / obj["after"],
                obj["chosen"],
                obj["rejected"],
                obj["source"],
                score,
            )
        )
    if not pairs:
        raise PreferenceError(f"{path}: no preference pairs")
    return pairs
