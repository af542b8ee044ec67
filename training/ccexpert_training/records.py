"""Training records and prediction files: the one JSONL format every reader writes and every trainer reads.

A record is one before/after pair with its reference captions (ARCHITECTURE.md, "Training records")::

    {"uid": str, "before": path, "after": path, "captions": [str, ...], "changed": bool | null, "mask": path | null}

Relative paths are relative to the JSONL file. Predictions (what ``ccexpert predict`` writes and ``ccexpert eval``
reads) use the reference's published format ``{"uid", "pred", "change_caption": [refs]}``.

Bad input raises :class:`RecordError` naming the file, line and uid; a bad record is never replaced by another
one (the reference silently substitutes a neighbouring sample, see ccexpert_model.md §4.3).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

RECORD_KEYS = ("uid", "before", "after", "captions", "changed", "mask")


class RecordError(ValueError):
    """A dataset record (or prediction line) that cannot be used; the message names the record."""


@dataclass(frozen=True)
class PairRecord:
    """One before/after pair. ``before``/``after``/``mask`` are absolute or relative to the current directory."""

    uid: str
    before: Path
    after: Path
    captions: tuple[str, ...]
    changed: bool | None = None
    mask: Path | None = None
    source: str = field(default="", compare=False)  # "file.jsonl:12" for error messages

    def where(self) -> str:
        return f"record {self.uid!r}" + (f" ({self.source})" if self.source else "")

    def check_captions(self) -> None:
        """Raise unless there is at least one non-empty caption."""
        if not self.captions:
            raise RecordError(f"{self.where()}: empty caption list")
        for i, caption in enumerate(self.captions):
            if not isinstance(caption, str) or not caption.strip():
                raise RecordError(f"{self.where()}: caption {i} is empty or not a string: {caption!r}")

    def check_images(self) -> tuple[int, int]:
        """Open both images lazily (header only) and check they exist, decode and have the same size."""
        sizes = []
        for role, path in (("before", self.before), ("after", self.after)):
            sizes.append(_image_size(path, f"{self.where()}, {role} image"))
        if sizes[0] != sizes[1]:
            raise RecordError(
                f"{self.where()}: before/after sizes differ: before {sizes[0][0]}x{sizes[0][1]}, "
                f"after {sizes[1][0]}x{sizes[1][1]} ({self.before}, {self.after})"
            )
        return sizes[0]

    def load_images(self) -> tuple[Image.Image, Image.Image]:
        """Decode both images as RGB; any failure raises RecordError naming this record and the file."""
        images = [
            self._decode(path, f"{role} image", "RGB")
            for role, path in (("before", self.before), ("after", self.after))
        ]
        if images[0].size != images[1].size:
            raise RecordError(
                f"{self.where()}: before/after sizes differ: before {images[0].size[0]}x{images[0].size[1]}, "
                f"after {images[1].size[0]}x{images[1].size[1]} ({self.before}, {self.after})"
            )
        return images[0], images[1]

    def load_mask(self, size: tuple[int, int]) -> np.ndarray | None:
        """The change mask as an HxW array (nonzero = changed), None when the record has none. It must have the
        images' ``size`` (width, height), as change-detection masks do; else RecordError naming the record."""
        if self.mask is None:
            return None
        mask = np.asarray(self._decode(self.mask, "change mask", "L"))
        if (mask.shape[1], mask.shape[0]) != size:
            raise RecordError(
                f"{self.where()}, change mask: size {mask.shape[1]}x{mask.shape[0]} differs from the images' "
                f"{size[0]}x{size[1]} ({self.mask})"
            )
        return mask

    def _decode(self, path: Path, role: str, mode: str) -> Image.Image:
        """One file of this record decoded to ``mode``; a missing or unreadable file raises RecordError naming it."""
        what = f"{self.where()}, {role}"
        if not path.is_file():
            raise RecordError(f"{what}: file not found: {path}")
        try:
            with Image.open(path) as image:
                return image.convert(mode)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise RecordError(f"{what}: cannot read {path}: {exc}") from exc

    def to_json(self, relative_to: Path | None = None) -> dict:
        def rel(path: Path | None) -> str | None:
            if path is None:
                return None
            if relative_to is not None:
                return Path(os.path.relpath(Path(path).resolve(), relative_to.resolve())).as_posix()
            return str(path)

        return {
            "uid": self.uid,
            "before": rel(self.before),
            "after": rel(self.after),
            "captions": list(self.captions),
            "changed": self.changed,
            "mask": rel(self.mask),
        }


def _image_size(path: Path, what: str) -> tuple[int, int]:
    if not Path(path).is_file():
        raise RecordError(f"{what}: file not found: {path}")
    try:
        with Image.open(path) as image:
            image.verify()  # checks the file structure without decoding every pixel
            return image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise RecordError(f"{what}: cannot read {path}: {exc}") from exc


def iter_jsonl(path: Path, what: str, error: type[ValueError] = RecordError) -> Iterator[tuple[str, dict]]:
    """Yield ``("file:line", object)`` for every non-empty line of a JSONL file.

    A missing file, a line that is not JSON or not a JSON object raises ``error`` naming the file and line, so every
    reader of the project's JSONL files (records, predictions, preferences) fails the same clear way.
    """
    if not path.is_file():
        raise error(f"{what} file not found: {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            source = f"{path}:{number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{source}: invalid JSON: {exc}") from exc
            if not isinstance(obj, dict):
                raise error(f"{source}: expected a JSON object, got {type(obj).__name__}")
            yield source, obj


def write_jsonl(objects: Iterable[dict], path: Path) -> int:
    """Write one JSON object per line (creating the folder); returns the number written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for obj in objects:
            handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += 1
    return count


def parse_record(obj: object, base_dir: Path, source: str, require_captions: bool = True) -> PairRecord:
    """Validate one decoded JSON object and turn it into a PairRecord (paths resolved against ``base_dir``)."""
    if not isinstance(obj, dict):
        raise RecordError(f"{source}: expected a JSON object, got {type(obj).__name__}")
    uid = obj.get("uid")
    if not isinstance(uid, str) or not uid:
        raise RecordError(f"{source}: missing or empty 'uid'")
    where = f"record {uid!r} ({source})"
    unknown = sorted(set(obj) - set(RECORD_KEYS))
    if unknown:
        raise RecordError(f"{where}: unknown keys {unknown}; allowed: {list(RECORD_KEYS)}")
    paths: dict[str, Path] = {}  # "mask" stays out when it is null
    for key in ("before", "after", "mask"):
        value = obj.get(key)
        if value is None and key == "mask":
            continue
        if not isinstance(value, str) or not value:
            raise RecordError(f"{where}: '{key}' must be a non-empty path string, got {value!r}")
        path = Path(value)
        paths[key] = path if path.is_absolute() else base_dir / path
    captions = obj.get("captions")
    if not isinstance(captions, list):
        raise RecordError(f"{where}: 'captions' must be a list of strings, got {captions!r}")
    changed = obj.get("changed")
    if changed is not None and not isinstance(changed, bool):
        raise RecordError(f"{where}: 'changed' must be true, false or null, got {changed!r}")
    record = PairRecord(uid, paths["before"], paths["after"], tuple(captions), changed, paths.get("mask"), source)
    if require_captions or captions:
        record.check_captions()
    return record


def read_records(path: str | Path, require_captions: bool = True) -> list[PairRecord]:
    """Read a records JSONL file; every malformed line or duplicate uid raises RecordError naming it."""
    path = Path(path)
    records: list[PairRecord] = []
    seen: dict[str, str] = {}
    for source, obj in iter_jsonl(path, "records"):
        record = parse_record(obj, path.parent, source, require_captions)
        if record.uid in seen:
            raise RecordError(f"{record.where()}: duplicate uid (first at {seen[record.uid]})")
        seen[record.uid] = source
        records.append(record)
    return records


def write_records(records: Iterable[PairRecord], path: str | Path, relative: bool = True) -> int:
    """Write records as JSONL; with ``relative`` the paths are stored relative to the file's folder."""
    path = Path(path)
    return write_jsonl((record.to_json(path.parent if relative else None) for record in records), path)


def check_records(records: Sequence[PairRecord], check_images: bool = True) -> None:
    """Pre-flight check of a whole dataset, so a bad record fails at start-up and not hours into training."""
    for record in records:
        record.check_captions()
        if check_images:
            record.check_images()


@dataclass(frozen=True)
class Prediction:
    """One line of a predictions file: the model's caption and the reference captions."""

    uid: str
    pred: str
    refs: tuple[str, ...]

    def to_json(self) -> dict:
        return {"uid": self.uid, "pred": self.pred, "change_caption": list(self.refs)}


def read_predictions(path: str | Path) -> list[Prediction]:
    """Read ``{"uid", "pred", "change_caption"}`` lines (duplicates are kept; metrics deduplicate with a warning)."""
    out: list[Prediction] = []
    for source, obj in iter_jsonl(Path(path), "predictions"):
        uid, pred, refs = obj.get("uid"), obj.get("pred"), obj.get("change_caption")
        if not isinstance(uid, str) or not uid:
            raise RecordError(f"{source}: missing or empty 'uid'")
        if not isinstance(pred, str):
            raise RecordError(f"prediction {uid!r} ({source}): 'pred' must be a string, got {pred!r}")
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) and r.strip() for r in refs):
            raise RecordError(
                f"prediction {uid!r} ({source}): 'change_caption' must be a non-empty list of non-empty strings"
            )
        out.append(Prediction(uid, pred, tuple(refs)))
    return out


def write_predictions(predictions: Iterable[Prediction], path: str | Path) -> int:
    return write_jsonl((prediction.to_json() for prediction in predictions), Path(path))
