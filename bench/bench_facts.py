"""Caption parser (``ccexpert_changes.core.facts``) on the human-written LEVIR-CC references (train + val).

Prints, from one run:
- coverage: share of change references with at least one fact whose object is a known class (not ``other``) and
  whose action is known (goal >= 98 %), and share of no-change references with no fact (goal 100 %);
- per-field precision / recall against ``tests/data/levircc_fact_labels.jsonl``: 200 references (180 change, 20
  no-change, drawn with ``random.Random(27)``) labelled by reading each caption, never from the parser's output.
  The labels hold caption ids, not the text (LEVIR-CC's terms are unclear), so the captions are read from
  ``../shared/data/levircc_captions``. The parser's rules were last adjusted (``two completed villas``, ``in place
  of``, ``developed as``) after reading the disagreements on this set, so its figures flatter the parser somewhat:
  the coverage figure, over all 40,740 references, is the unbiased one.

Fields compared per reference, as sets: ``object`` (object classes), ``action`` ((object, action) pairs),
``count`` ((object, action, count) with the counts of one (object, action) summed, None when one is unknown) and
``where`` (the union of the cells).

    .venv/bin/python bench/bench_facts.py [--json] [--captions PATH] [--show-misses N]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from ccexpert_changes.core.facts import parse_caption

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "tests" / "data" / "levircc_fact_labels.jsonl"
CAPTIONS = REPO.parent / "shared" / "data" / "levircc_captions" / "levircc_train_val_captions.json"
if not CAPTIONS.is_file():
    CAPTIONS = Path("/work/shared/data/levircc_captions/levircc_train_val_captions.json")


def field_sets(facts: Iterable[dict]) -> dict[str, set]:
    """The compared sets of one reference's facts (dicts with object, action, count, where)."""
    facts = list(facts)
    counts: dict[tuple[str, str], int | None] = {}
    for f in facts:
        key = (f["object"], f["action"])
        before = counts.get(key, 0)
        counts[key] = None if before is None or f["count"] is None else before + f["count"]
    return {
        "object": {f["object"] for f in facts},
        "action": {(f["object"], f["action"]) for f in facts},
        "count": {(o, a, c) for (o, a), c in counts.items()},
        "where": {cell for f in facts for cell in f["where"]},
    }


def precision_recall(pairs: list[tuple[set, set]]) -> dict[str, float]:
    """Micro precision/recall over (predicted, labelled) sets; an empty pair of sets counts as nothing."""
    tp = sum(len(p & g) for p, g in pairs)
    pred = sum(len(p) for p, _ in pairs)
    gold = sum(len(g) for _, g in pairs)
    return {"precision": tp / pred if pred else 1.0, "recall": tp / gold if gold else 1.0, "n_labelled": gold}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    parser.add_argument("--captions", default=str(CAPTIONS), help="levircc_train_val_captions.json")
    parser.add_argument("--show-misses", type=int, default=0, help="print N labelled references that disagree")
    args = parser.parse_args(argv)
    path = Path(args.captions)
    if not path.is_file():
        print(f"bench_facts: the LEVIR-CC references are not here: {path} (../shared/data)", file=sys.stderr)
        return 2
    splits = json.loads(path.read_text(encoding="utf-8"))["splits"]

    changed_total = changed_covered = unchanged_total = unchanged_clean = 0
    for pairs in splits.values():
        for captions in pairs.values():
            for caption in captions:
                parsed = parse_caption(caption)
                if parsed.changed:
                    changed_total += 1
                    changed_covered += any(f.object != "other" for f in parsed.facts)
                else:
                    unchanged_total += 1
                    unchanged_clean += not parsed.facts

    per_field: dict[str, list[tuple[set, set]]] = {"object": [], "action": [], "count": [], "where": []}
    misses = []
    labels = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    for label in labels:
        caption = splits[label["split"]][label["pair"]][label["ref"]]
        predicted = field_sets(f.to_dict() for f in parse_caption(caption).facts)
        gold = field_sets(label["facts"])
        for name in per_field:
            per_field[name].append((predicted[name], gold[name]))
        if predicted != gold:
            misses.append((caption, predicted, gold))

    figures = {
        "change_references": changed_total,
        "change_coverage": changed_covered / changed_total,
        "no_change_references": unchanged_total,
        "no_change_without_facts": unchanged_clean / unchanged_total,
        "labelled_references": len(labels),
        "labelled_exact": 1 - len(misses) / len(labels),
        **{f"{name}_{k}": v for name, pairs in per_field.items() for k, v in precision_recall(pairs).items()},
    }
    print(f"LEVIR-CC train+val references: {changed_total} change, {unchanged_total} no-change")
    print(f"  change references with a known object and action: {figures['change_coverage']:.2%} (goal >= 98 %)")
    print(f"  no-change references without facts: {figures['no_change_without_facts']:.2%} (goal 100 %)")
    print(f"Against {len(labels)} hand-labelled references ({figures['labelled_exact']:.1%} agree on every field):")
    for name in per_field:
        print(
            f"  {name:7s} precision {figures[name + '_precision']:.3f}  recall {figures[name + '_recall']:.3f}"
            f"  ({figures[name + '_n_labelled']} labelled)"
        )
    for caption, predicted, gold in misses[: args.show_misses]:
        print(f"- {caption}\n    parser: {predicted}\n    label:  {gold}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
