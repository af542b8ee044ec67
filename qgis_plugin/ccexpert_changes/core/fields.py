"""The output layer's fields and tile statuses, shared by the QGIS plugin and ``ccexpert describe``.

One polygon per chip in the before raster's CRS; GeoPackage layer ``change_captions``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .fact_fields import tile_fields
from .facts import PARSER_VERSION

LAYER_NAME = "change_captions"
# Layer metadata item holding the run's parameters as JSON (raster paths, bands, nodata, grid, stretch), written by the
# plugin and by `ccexpert describe`, so that `ccexpert report` can re-read the chips of either.
RUN_METADATA_TAG = "ccexpert_describe"

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_SKIPPED_NODATA = "skipped_nodata"
STATUSES: tuple[str, ...] = (STATUS_OK, STATUS_ERROR, STATUS_SKIPPED_NODATA)

# (name, type) in layer order; types: "str", "int", "real" (QGIS: QString / Int / Double; OGR: String/Integer/Real)
FIELDS: tuple[tuple[str, str], ...] = (
    ("tile_id", "str"),
    ("row", "int"),
    ("col", "int"),
    ("caption", "str"),
    ("confidence", "real"),
    ("changed", "int"),
    ("status", "str"),
    ("error", "str"),
    ("nodata_before", "real"),
    ("nodata_after", "real"),
    ("model", "str"),
    ("backend", "str"),
    ("run_id", "str"),
    ("created_utc", "str"),
    # change facts parsed from the caption (core.fact_fields.tile_fields; docs/ARCHITECTURE.md "Change facts")
    ("objects", "str"),
    ("actions", "str"),
    ("n_objects", "int"),
    ("where", "str"),
    ("change_kind", "str"),
    ("facts", "str"),
)
FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in FIELDS)
FIELD_TYPES: dict[str, str] = dict(FIELDS)

# What an analyst reads in the attribute table, identify results and forms (the shipped QML's <aliases> holds the
# same, checked by a test); the field names themselves stay the contract.
FIELD_ALIASES: dict[str, str] = {
    "tile_id": "Tile",
    "row": "Row",
    "col": "Column",
    "caption": "What changed",
    "confidence": "Confidence (0-1)",
    "changed": "Changed",
    "status": "Status",
    "error": "Error",
    "nodata_before": "Nodata before (fraction)",
    "nodata_after": "Nodata after (fraction)",
    "model": "Model",
    "backend": "Backend",
    "run_id": "Run",
    "created_utc": "Created (UTC)",
    "objects": "Objects",
    "actions": "Actions",
    "n_objects": "Number of objects",
    "where": "Where in the tile",
    "change_kind": "Kind of change",
    "facts": "Facts (JSON)",
}
CONFIDENCE_DECIMALS = 3  # the model's confidence is no finer than this; more digits only look precise


def utc_now_iso() -> str:
    """``created_utc`` value: ISO 8601 in UTC with a ``Z`` suffix, second precision."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def make_record(
    *,
    tile_id: str,
    row: int,
    col: int,
    status: str,
    caption: str | None = None,
    confidence: float | None = None,
    changed: bool | None = None,
    error: str | None = None,
    nodata_before: float | None = None,
    nodata_after: float | None = None,
    model: str | None = None,
    backend: str | None = None,
    run_id: str | None = None,
    created_utc: str | None = None,
) -> dict[str, Any]:
    """One attribute row with every field in layer order; ``changed`` becomes 0/1, or None (NULL) when the
    tile was not captioned; ``confidence`` is rounded to CONFIDENCE_DECIMALS; the change-fact fields come from the
    caption (:func:`core.fact_fields.tile_fields`, None when not captioned). Refuses unknown statuses and an ``ok`` tile
    without a caption. ``row``/``col`` are the chip's grid indexes (0-based, as in the tile id); the record holds them
    1-based, the way people count rows and columns in the layer, its labels and the report."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    if status == STATUS_OK and (caption is None or changed is None):
        raise ValueError(f"tile {tile_id}: status ok needs a caption and changed")
    if status != STATUS_OK:
        changed = None
    return {
        "tile_id": tile_id,
        "row": int(row) + 1,
        "col": int(col) + 1,
        "caption": caption,
        "confidence": None if confidence is None else round(float(confidence), CONFIDENCE_DECIMALS),
        "changed": None if changed is None else int(bool(changed)),
        "status": status,
        "error": error,
        "nodata_before": None if nodata_before is None else float(nodata_before),
        "nodata_after": None if nodata_after is None else float(nodata_after),
        "model": model,
        "backend": backend,
        "run_id": run_id,
        "created_utc": created_utc or utc_now_iso(),
        **tile_fields(caption if status == STATUS_OK else None, changed),
    }


def check_record(record: Mapping[str, Any]) -> None:
    """ValueError naming the first missing or unexpected field (what a writer must refuse)."""
    missing = [name for name in FIELD_NAMES if name not in record]
    extra = [name for name in record if name not in FIELD_TYPES]
    if missing or extra:
        raise ValueError(f"record fields do not match the layer: missing {missing}, unexpected {extra}")


def run_metadata(
    before: str,
    after: str,
    bands: str,
    nodata: float | None,
    chip_size: int,
    overlap: int,
    grid_hash: str,
    stretch: Mapping[str, Any],
    *,
    model: str | None = None,
    before_source: Mapping[str, Any] | None = None,
    after_source: Mapping[str, Any] | None = None,
    aoi: str | None = None,
    context: str | None = None,
) -> dict[str, Any]:
    """The run parameters stored under RUN_METADATA_TAG (``bands`` as "1,2,3"; ``nodata`` None = as declared;
    ``facts_parser``: the caption parser's version, so fact fields of two versions never mix in one layer).

    They are also the output's fingerprint: a resume compares them with the run about to append to the file
    (:func:`fingerprint_differences`). ``model`` is the backend's model id (name and version);
    ``before_source``/``after_source`` are ``core.sources.source_identity`` of the two rasters; ``aoi`` is the area of
    interest as WKT in the before CRS, when the run had one (the report outlines it; not part of the fingerprint:
    resuming with another AOI adds its tiles); ``context`` is the run's note (``core.context``), when it had one
    (the report shows it; not part of the fingerprint either: CCExpert ignores notes, and a resume that rewords one
    is not another scene; the output keeps the note it was started with)."""
    meta: dict[str, Any] = {
        "before": before,
        "after": after,
        "bands": bands,
        "nodata": nodata,
        "chip_size": chip_size,
        "overlap": overlap,
        "grid_hash": grid_hash,
        "stretch": dict(stretch),
        "facts_parser": PARSER_VERSION,
    }
    if model is not None:
        meta["model"] = model
    if before_source is not None:
        meta["before_source"] = dict(before_source)
    if after_source is not None:
        meta["after_source"] = dict(after_source)
    if aoi:
        meta["aoi"] = aoi
    if context:
        meta["context"] = context
    return meta


# (key, what it is for the user) compared by a resume; the grid hash is checked on its own (tile ids carry it)
_FINGERPRINT = (
    ("before_source", "before raster"),
    ("after_source", "after raster"),
    ("bands", "bands"),
    ("nodata", "nodata value"),
    ("chip_size", "chip size"),
    ("overlap", "overlap"),
    ("grid_hash", "chip grid"),
    ("stretch", "8-bit stretch"),
    ("model", "model"),
    ("facts_parser", "caption parser version (the change-fact fields)"),
)


def fingerprint_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between the run that made an output (``stored``, its run metadata) and the run about to
    resume it (``current``), one readable line per item; empty when they match. Items missing on either side
    (an output from an older version) are not compared. Raster files are compared by size and content hash,
    not by path: a moved or copied raster is the same scene, a regenerated one at the same path is not."""
    out = []
    for key, label in _FINGERPRINT:
        if key not in stored or key not in current:
            continue
        then, now = stored[key], current[key]
        if key.endswith("_source"):
            if not isinstance(then, Mapping) or not isinstance(now, Mapping):
                continue
            if "content" not in then or "content" not in now:
                continue
            if (then.get("size"), then.get("content")) != (now.get("size"), now.get("content")):
                out.append(f"{label}: {_describe_source(then)} then, {_describe_source(now)} now")
        elif not _same(then, now):
            out.append(f"{label}: {_short(then)} then, {_short(now)} now")
    return out


def _describe_source(source: Mapping[str, Any]) -> str:
    return f"{source.get('path')} ({source.get('size')} bytes, content {str(source.get('content'))[:10]})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _same(a: Any, b: Any) -> bool:
    """Equality after a JSON round trip: floats within 1e-9, lists and tuples alike."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def fingerprint_keys() -> tuple[str, ...]:
    """The run-metadata items a resume compares (an output holding none of them has no fingerprint)."""
    return tuple(key for key, _ in _FINGERPRINT)
