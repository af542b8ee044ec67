"""The LEVIR-CC captioning protocol, as the CCExpert reference scores it (ccexpert_model.md §5.2).

- Normalisation of predictions and references: ``lower()`` then remove every '.', nothing else (no PTB tokenizer).
- Scorers from pycocoevalcap: BLEU-1..4 (corpus BLEU, 'closest' reference length), METEOR 1.5 (Java jar,
  ``-l en -norm``), ROUGE-L (beta 1.2), CIDEr-D (sigma 6, clipped, x10; document frequencies from the scored refs).
- S*m = mean(BLEU-4, METEOR, ROUGE-L, CIDEr-D). Every number is reported x100 (CIDEr-D 1.43 -> 143.x).
- Duplicate uids are scored once (the first line wins) with a warning: the reference's DDP path scores padded
  duplicates and inflates its numbers slightly (§5.3).
- Change/no-change accuracy: a pair is "no change" when one of its references is a no-change caption, the
  prediction when :func:`ccexpert.nochange.is_no_change` says so. The change and no-change subsets are also
  scored separately.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ccexpert.nochange import is_no_change

from .records import Prediction

SCORE_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "S*m")
JSON_KEYS = ("n", *SCORE_KEYS, "change_accuracy")


def normalise(text: str) -> str:
    """The reference's normalisation: lower-case and delete '.'; newlines (which would break the METEOR
    line protocol) become spaces, nothing else changes."""
    return text.lower().replace(".", "").replace("\r", " ").replace("\n", " ")


class MeteorUnavailable(RuntimeError):
    """Java (needed by the METEOR 1.5 jar) is missing."""


class Meteor:
    """METEOR 1.5 through the jar that ships with pycocoevalcap (``-l en -norm``), as coco-caption runs it: one
    SCORE line per pair, then one EVAL line over all statistics for the corpus score. Unlike pycocoevalcap's
    wrapper it closes its pipes and reports a dead JVM clearly."""

    def __init__(self):
        if shutil.which("java") is None:
            raise MeteorUnavailable(
                "METEOR 1.5 needs Java on PATH (apt-get install default-jre-headless); scripts/setup.sh checks for it"
            )
        import pycocoevalcap.meteor.meteor as module  # the jar and paraphrase table sit next to it

        jar_dir = Path(module.__file__).parent
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the JVM; closed in close())
        self._process = subprocess.Popen(
            ["java", "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"],
            cwd=jar_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        """The JVM's stdin and stdout (both opened as pipes in ``__init__``)."""
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:  # cannot happen with stdin/stdout=PIPE; typed for mypy
            raise MeteorUnavailable("METEOR 1.5 (java) has no pipes")
        return stdin, stdout

    def _ask(self, line: str) -> str:
        stdin, stdout = self._pipes()
        stdin.write((line + "\n").encode("utf-8"))
        stdin.flush()
        answer = stdout.readline().decode("utf-8").strip()
        if not answer:
            self._stderr.seek(0)
            raise MeteorUnavailable(f"METEOR 1.5 (java) stopped: {self._stderr.read(2000).decode(errors='replace')}")
        return answer

    def compute_score(self, gts: Mapping[str, Sequence[str]], res: Mapping[str, Sequence[str]]) -> float:
        stats = []
        for key in gts:
            hypothesis = res[key][0].replace("|||", "").replace("  ", " ")
            stats.append(self._ask(" ||| ".join(("SCORE", " ||| ".join(gts[key]), hypothesis))))
        stdin, stdout = self._pipes()
        stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("utf-8"))
        stdin.flush()
        for _ in stats:  # per-segment scores, then the corpus score
            stdout.readline()
        answer = stdout.readline().decode("utf-8").strip()
        if not answer:
            raise MeteorUnavailable("METEOR 1.5 (java) gave no corpus score")
        return float(answer)

    def close(self) -> None:
        for stream in self._pipes():
            stream.close()
        self._process.wait(timeout=30)
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def coco_scores(gts: Mapping[str, Sequence[str]], res: Mapping[str, str]) -> dict[str, float]:
    """Raw pycocoevalcap scores (fractions, not x100) of already-normalised captions, keyed by uid."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if set(gts) != set(res):
        raise ValueError("references and predictions must have the same uids")
    if not gts:
        raise ValueError("nothing to score")
    keys = sorted(gts)
    g = {k: list(gts[k]) for k in keys}
    r = {k: [res[k]] for k in keys}
    bleu, _ = Bleu(4).compute_score(g, r, verbose=0)
    try:
        meteor = shared_meteor().compute_score(g, r)
    except BaseException:
        _close_shared()  # never reuse a JVM whose line protocol may be out of step
        raise
    rouge, _ = Rouge().compute_score(g, r)
    cider, _ = Cider().compute_score(g, r)
    return {
        "BLEU-1": bleu[0],
        "BLEU-2": bleu[1],
        "BLEU-3": bleu[2],
        "BLEU-4": bleu[3],
        "METEOR": meteor,
        "ROUGE-L": rouge,
        "CIDEr-D": float(cider),
    }


_SHARED: list[Meteor] = []
_close_registered = False  # `_close_shared` is registered with atexit once


def shared_meteor() -> Meteor:
    """One METEOR JVM per Python process: loading the paraphrase table takes seconds, and in-training evaluation
    scores many times. Restarted if it died; stopped at exit."""
    global _close_registered
    if _SHARED and _SHARED[0]._process.poll() is None:
        return _SHARED[0]
    _SHARED.clear()
    _SHARED.append(Meteor())
    if len(_SHARED) == 1 and not _close_registered:
        atexit.register(_close_shared)
        _close_registered = True
    return _SHARED[0]


def _close_shared() -> None:
    while _SHARED:
        _SHARED.pop().close()


@dataclass
class EvalReport:
    """Scores x100. ``overall`` has every JSON key; the subsets have ``n`` plus the scores (None when empty)."""

    overall: dict
    change: dict
    no_change: dict
    duplicates: int

    def as_json(self) -> dict:
        """The ``ccexpert eval --json`` object: exactly :data:`JSON_KEYS`."""
        return {key: self.overall[key] for key in JSON_KEYS}


def deduplicate(predictions: Sequence[Prediction]) -> tuple[list[Prediction], int]:
    """Keep the first line per uid; warn (and count) the rest."""
    seen: dict[str, Prediction] = {}
    duplicates = 0
    for prediction in predictions:
        if prediction.uid in seen:
            duplicates += 1
            continue
        seen[prediction.uid] = prediction
    if duplicates:
        warnings.warn(
            f"{duplicates} duplicate uid line(s) ignored; {len(seen)} unique pairs scored (first line per uid)",
            stacklevel=2,
        )
    return list(seen.values()), duplicates


def _score_subset(predictions: Sequence[Prediction]) -> dict:
    out: dict = {"n": len(predictions)}
    if not predictions:
        out.update({key: None for key in SCORE_KEYS})
        return out
    gts = {p.uid: [normalise(ref) for ref in p.refs] for p in predictions}
    res = {p.uid: normalise(p.pred) for p in predictions}
    raw = coco_scores(gts, res)
    raw["S*m"] = (raw["BLEU-4"] + raw["METEOR"] + raw["ROUGE-L"] + raw["CIDEr-D"]) / 4
    out.update({key: 100.0 * float(raw[key]) for key in SCORE_KEYS})
    return out


def reference_is_no_change(refs: Sequence[str]) -> bool:
    return any(is_no_change(ref) for ref in refs)


def evaluate_predictions(predictions: Sequence[Prediction]) -> EvalReport:
    """Score a predictions list with the LEVIR-CC protocol (dedup by uid, overall + change/no-change subsets)."""
    unique, duplicates = deduplicate(predictions)
    if not unique:
        raise ValueError("no predictions to score")
    truth_no_change = [reference_is_no_change(p.refs) for p in unique]
    pred_no_change = [is_no_change(p.pred) for p in unique]
    correct = sum(t == p for t, p in zip(truth_no_change, pred_no_change, strict=True))
    overall = _score_subset(unique)
    overall["change_accuracy"] = 100.0 * correct / len(unique)
    change = _score_subset([p for p, t in zip(unique, truth_no_change, strict=True) if not t])
    no_change = _score_subset([p for p, t in zip(unique, truth_no_change, strict=True) if t])
    return EvalReport(overall, change, no_change, duplicates)


def format_report(report: EvalReport) -> str:
    """Human-readable table: overall, change subset, no-change subset."""

    def fmt(value) -> str:
        return "   -  " if value is None else f"{value:6.2f}"

    lines = [f"{'subset':<10} {'n':>6} " + " ".join(f"{k:>7}" for k in SCORE_KEYS)]
    for name, scores in (("all", report.overall), ("change", report.change), ("no-change", report.no_change)):
        lines.append(f"{name:<10} {scores['n']:>6} " + " ".join(f"{fmt(scores[k]):>7}" for k in SCORE_KEYS))
    lines.append(f"change/no-change accuracy: {report.overall['change_accuracy']:.2f}%")
    if report.duplicates:
        lines.append(f"({report.duplicates} duplicate uid lines ignored)")
    return "\n".join(lines)
