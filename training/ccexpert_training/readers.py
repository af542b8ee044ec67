"""Readers that turn public dataset layouts into :class:`~ccexpert_training.records.PairRecord` lists.

- LEVIR-CC: ``LevirCCcaptions.json`` (``{"images": [{"filepath", "filename", "imgid", "split", "changeflag",
  "sentences": [{"raw", "tokens"}]}]}``) + ``images/{split}/A|B/<filename>``. Uids follow the reference's
  published predictions (``Levir_CC_test_img8148``, the global ``imgid``), so our predictions line up with theirs.
- LEVIR-CD-style change detection: ``[split/]A``, ``[split/]B``, ``[split/]label`` folders of same-named files.
- A generic folder of pairs (``A``/``B`` by default) plus a captions file mapping file name -> captions.

Captions are written the way the reference trains on them (§3.4 of ccexpert_model.md: sentence case with the final
period, e.g. "The scene is the same as before."); evaluation lower-cases and drops '.' anyway. ``sentence_case=False``
keeps the raw text (whitespace-normalised).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ccexpert.nochange import is_no_change

from .records import PairRecord, RecordError
from .structured_files import read_json_or_yaml

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def clean_caption(text: str, sentence_case: bool = True) -> str:
    """Whitespace-normalise a caption; with ``sentence_case`` capitalise it and end it with one period."""
    text = " ".join(str(text).split())
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    if not sentence_case or not text:
        return text
    text = text.rstrip(" .")
    return text[:1].upper() + text[1:] + "."


def _captions_from(value: object, where: str, sentence_case: bool) -> tuple[str, ...]:
    """Accept a list of strings, a list of token lists, or a list of {"raw"|"tokens"} sentence objects."""
    if not isinstance(value, list):
        raise RecordError(f"{where}: captions must be a list, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            item = item.get("raw") or item.get("tokens")
        if isinstance(item, list) and all(isinstance(t, str) for t in item):
            item = " ".join(item)
        if not isinstance(item, str):
            raise RecordError(f"{where}: caption {i} is not text: {item!r}")
        caption = clean_caption(item, sentence_case)
        if not caption:
            raise RecordError(f"{where}: caption {i} is empty")
        out.append(caption)
    if not out:
        raise RecordError(f"{where}: empty caption list")
    return tuple(out)


def _changed_from_captions(captions: Sequence[str]) -> bool:
    return not any(is_no_change(c) for c in captions)


def read_levircc(
    root: str | Path,
    split: str,
    captions_file: str | Path | None = None,
    sentence_case: bool = True,
) -> list[PairRecord]:
    """LEVIR-CC ``split`` (train/val/test) from ``root/LevirCCcaptions.json`` and ``root/images/{split}/A|B``."""
    root = Path(root)
    captions_path = Path(captions_file) if captions_file else root / "LevirCCcaptions.json"
    if not captions_path.is_file():
        raise RecordError(f"LEVIR-CC captions file not found: {captions_path}")
    data = read_json_or_yaml(captions_path, RecordError, fmt="json")
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise RecordError(f"{captions_path}: expected an object with an 'images' list (LevirCCcaptions.json layout)")
    records = []
    for position, image in enumerate(images):
        image_split = image.get("split") or image.get("filepath")
        if image_split != split:
            continue
        filename = image.get("filename")
        where = f"{captions_path} images[{position}]"
        if not isinstance(filename, str) or not filename:
            raise RecordError(f"{where}: missing 'filename'")
        imgid = image.get("imgid")
        uid = f"Levir_CC_{split}_img{imgid}" if imgid is not None else f"Levir_CC_{split}_{Path(filename).stem}"
        captions = _captions_from(image.get("sentences"), f"{where} ({uid})", sentence_case)
        flag = image.get("changeflag")
        changed = bool(flag) if flag is not None else _changed_from_captions(captions)
        folder = root / "images" / (image.get("filepath") or split)
        records.append(
            PairRecord(uid, folder / "A" / filename, folder / "B" / filename, captions, changed, None, where)
        )
    if not records:
        raise RecordError(f"{captions_path}: no pairs for split {split!r}")
    return records


def load_captions_mapping(path: str | Path, key: str | None = None) -> dict[str, object]:
    """A JSON captions file: ``{name: [captions]}``, optionally nested under ``key`` (dotted: "splits.train")."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"captions file not found: {path}")
    data = read_json_or_yaml(path, RecordError, fmt="json")
    for part in key.split(".") if key else ():
        if not isinstance(data, dict) or part not in data:
            raise RecordError(f"{path}: key {key!r} not found (missing {part!r})")
        data = data[part]
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected an object mapping file names to caption lists")
    return data


def _pair_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise RecordError(f"folder not found: {folder}")
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_pair_folder(
    root: str | Path,
    captions: str | Path | Mapping[str, object] | None,
    captions_key: str | None = None,
    before_dir: str = "A",
    after_dir: str = "B",
    mask_dir: str | None = None,
    uid_prefix: str = "",
    sentence_case: bool = True,
    require_captions: bool = True,
) -> list[PairRecord]:
    """Pairs ``root/before_dir/NAME`` + ``root/after_dir/NAME`` with captions looked up by NAME (or its stem).

    A pair without captions is an error when ``require_captions`` (training data); otherwise it gets an empty caption
    list (e.g. change-detection data that a captioner labels later). A file present in only one of the two folders is
    always an error.
    """
    root = Path(root)
    names_before = _pair_names(root / before_dir)
    names_after = set(_pair_names(root / after_dir))
    only_before = sorted(set(names_before) - names_after)
    only_after = sorted(names_after - set(names_before))
    if only_before or only_after:
        raise RecordError(
            f"{root}: unpaired images (only in {before_dir}/: {only_before[:5]}, "
            f"only in {after_dir}/: {only_after[:5]})"
        )
    mapping = (
        captions if isinstance(captions, Mapping) or captions is None else load_captions_mapping(captions, captions_key)
    )
    records = []
    for name in names_before:
        uid = f"{uid_prefix}{Path(name).stem}"
        where = f"{root} pair {name!r}"
        raw = None
        if mapping is not None:
            raw = mapping.get(name, mapping.get(Path(name).stem))
        if raw is None:
            if require_captions:
                raise RecordError(f"record {uid!r} ({where}): no captions for {name!r} in the captions file")
            caps: tuple[str, ...] = ()
        else:
            caps = _captions_from(raw, f"record {uid!r} ({where})", sentence_case)
        mask = None
        if mask_dir is not None:
            mask = root / mask_dir / name
            if not mask.is_file():
                raise RecordError(f"record {uid!r} ({where}): mask not found: {mask}")
        changed = _changed_from_captions(caps) if caps else None
        records.append(PairRecord(uid, root / before_dir / name, root / after_dir / name, caps, changed, mask, where))
    if not records:
        raise RecordError(f"{root}: no image pairs found in {before_dir}/ and {after_dir}/")
    return records


def read_change_detection(
    root: str | Path,
    split: str | None = None,
    captions: str | Path | Mapping[str, object] | None = None,
    captions_key: str | None = None,
    uid_prefix: str | None = None,
    sentence_case: bool = True,
) -> list[PairRecord]:
    """LEVIR-CD-style ``[split/]A``, ``[split/]B``, ``[split/]label``; captions are optional (empty when absent),
    ``changed`` comes from the captions when there are some, else stays None (the mask→caption engine decides)."""
    root = Path(root)
    folder = root / split if split else root
    prefix = uid_prefix if uid_prefix is not None else f"{root.name}_{split + '_' if split else ''}"
    return read_pair_folder(
        folder,
        captions,
        captions_key=captions_key,
        mask_dir="label",
        uid_prefix=prefix,
        sentence_case=sentence_case,
        require_captions=False,
    )


READERS: dict[str, Callable[..., list[PairRecord]]] = {
    "levircc": read_levircc,
    "change_detection": read_change_detection,
    "folder": read_pair_folder,
}


def read_dataset(spec: Mapping[str, object], base_dir: Path) -> list[PairRecord]:
    """Dispatch a ``{"reader": name, ...kwargs}`` spec (paths relative to ``base_dir``) to one of :data:`READERS`."""
    spec = dict(spec)
    name = spec.pop("reader", None)
    if name not in READERS:
        raise RecordError(f"unknown reader {name!r}; choose one of {sorted(READERS)}")
    for key in ("root", "captions", "captions_file"):
        value = spec.get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            spec[key] = base_dir / value
    try:
        return READERS[name](**spec)
    except TypeError as exc:
        raise RecordError(f"reader {name!r}: bad arguments {sorted(spec)}: {exc}") from exc
