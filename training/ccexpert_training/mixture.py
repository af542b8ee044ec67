"""Dataset mixtures: which record sets a stage trains on, how often each is repeated, how captions are drawn.

The reference upsamples by repeating YAML entries (LEVIR-CC x6, SYSU-CD and SECOND x3, ccexpert_model.md §4.3);
here a ``repeat`` count says the same thing once. Example::

    caption_mode: flatten        # flatten: one sample per (pair, caption); random_choice: one per pair per epoch
    datasets:
      - name: levircc
        records: levircc_train.jsonl          # a records JSONL (relative to this YAML) ...
        repeat: 6
      - name: levircd
        reader: {reader: change_detection, root: ../LEVIR-CD, split: train, captions: cd_captions.json}
        repeat: 3                             # ... or a reader spec (see readers.READERS)

``caption_mode`` may also be set per dataset. A mixture can be given inline (a dict) in a stage config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .readers import read_dataset
from .records import PairRecord, RecordError, read_records
from .structured_files import read_json_or_yaml

CAPTION_MODES = ("flatten", "random_choice")
_MIXTURE_KEYS = {"caption_mode", "datasets", "seed"}
_ENTRY_KEYS = {"name", "records", "reader", "repeat", "caption_mode"}


class MixtureError(ValueError):
    """A mixture file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class MixtureEntry:
    name: str
    records: tuple[PairRecord, ...]
    repeat: int
    caption_mode: str


@dataclass(frozen=True)
class Sample:
    """One training sample: a record and the caption index (None = draw one at random each epoch)."""

    record: PairRecord
    caption_index: int | None
    dataset: str


@dataclass(frozen=True)
class Mixture:
    entries: tuple[MixtureEntry, ...]
    source: str = ""

    def samples(self) -> list[Sample]:
        """Expand repeats and caption modes: flatten gives repeat x sum(captions), random_choice repeat x pairs."""
        out: list[Sample] = []
        for entry in self.entries:
            for _ in range(entry.repeat):
                for record in entry.records:
                    if entry.caption_mode == "flatten":
                        out.extend(Sample(record, i, entry.name) for i in range(len(record.captions)))
                    else:
                        out.append(Sample(record, None, entry.name))
        return out

    def records(self) -> list[PairRecord]:
        """Every distinct record once (for pre-flight checks)."""
        seen: dict[tuple[str, str], PairRecord] = {}
        for entry in self.entries:
            for record in entry.records:
                seen.setdefault((entry.name, record.uid), record)
        return list(seen.values())

    def summary(self) -> str:
        parts = [f"{e.name}: {len(e.records)} pairs x{e.repeat} ({e.caption_mode})" for e in self.entries]
        return "; ".join(parts) + f" -> {len(self.samples())} samples"


def _entry(raw: object, index: int, base_dir: Path, default_mode: str, where: str) -> MixtureEntry:
    if not isinstance(raw, Mapping):
        raise MixtureError(f"{where}: datasets[{index}] must be a mapping")
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise MixtureError(f"{where}: datasets[{index}] has unknown keys {unknown}; allowed {sorted(_ENTRY_KEYS)}")
    name = raw.get("name") or f"dataset{index}"
    label = f"{where}: dataset {name!r}"
    repeat = raw.get("repeat", 1)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        raise MixtureError(f"{label}: 'repeat' must be a positive integer, got {repeat!r}")
    mode = raw.get("caption_mode", default_mode)
    if mode not in CAPTION_MODES:
        raise MixtureError(f"{label}: caption_mode must be one of {CAPTION_MODES}, got {mode!r}")
    if ("records" in raw) == ("reader" in raw):
        raise MixtureError(f"{label}: give exactly one of 'records' (a JSONL path) or 'reader' (a reader spec)")
    try:
        if "records" in raw:
            path = Path(raw["records"])
            records = read_records(path if path.is_absolute() else base_dir / path)
        else:
            records = read_dataset(raw["reader"], base_dir)
    except RecordError as exc:
        raise MixtureError(f"{label}: {exc}") from exc
    for record in records:
        try:
            record.check_captions()
        except RecordError as exc:
            raise MixtureError(f"{label}: {exc}") from exc
    return MixtureEntry(str(name), tuple(records), repeat, mode)


def load_mixture(
    spec: str | Path | Mapping, base_dir: str | Path | None = None, caption_mode: str | None = None
) -> Mixture:
    """Load a mixture from a YAML path or an inline dict. ``caption_mode`` overrides the file's default mode
    (not per-dataset settings). A bare records JSONL path is accepted as a one-dataset mixture."""
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if path.suffix == ".jsonl":
            spec = {"datasets": [{"name": path.stem, "records": str(path)}]}
            base_dir, where = path.parent, str(path)
        else:
            if not path.is_file():
                raise MixtureError(f"mixture file not found: {path}")
            spec = read_json_or_yaml(path, MixtureError, fmt="yaml")
            base_dir, where = path.parent, str(path)
    else:
        where = "inline mixture"
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    if not isinstance(spec, Mapping):
        raise MixtureError(f"{where}: expected a mapping with a 'datasets' list")
    unknown = sorted(set(spec) - _MIXTURE_KEYS)
    if unknown:
        raise MixtureError(f"{where}: unknown keys {unknown}; allowed {sorted(_MIXTURE_KEYS)}")
    default_mode = caption_mode or spec.get("caption_mode", "flatten")
    if default_mode not in CAPTION_MODES:
        raise MixtureError(f"{where}: caption_mode must be one of {CAPTION_MODES}, got {default_mode!r}")
    datasets = spec.get("datasets")
    if not isinstance(datasets, Sequence) or isinstance(datasets, str) or not datasets:
        raise MixtureError(f"{where}: 'datasets' must be a non-empty list")
    entries = tuple(_entry(raw, i, base_dir, default_mode, where) for i, raw in enumerate(datasets))
    return Mixture(entries, where)
