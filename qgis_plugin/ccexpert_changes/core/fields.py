"""The output layer's fields and tile statuses, shared by the QGIS plugin and ``ccexpert describe``.

One polygon per chip in the before raster's CRS; GeoPackage layer ``change_captions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

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
)
FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in FIELDS)
FIELD_TYPES: dict[str, str] = dict(FIELDS)


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
    tile was not captioned. Refuses unknown statuses and an ``ok`` tile without a caption."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    if status == STATUS_OK and (caption is None or changed is None):
        raise ValueError(f"tile {tile_id}: status ok needs a caption and changed")
    if status != STATUS_OK:
        changed = None
    return {
        "tile_id": tile_id,
        "row": int(row),
        "col": int(col),
        "caption": caption,
        "confidence": None if confidence is None else float(confidence),
        "changed": None if changed is None else int(bool(changed)),
        "status": status,
        "error": error,
        "nodata_before": None if nodata_before is None else float(nodata_before),
        "nodata_after": None if nodata_after is None else float(nodata_after),
        "model": model,
        "backend": backend,
        "run_id": run_id,
        "created_utc": created_utc or utc_now_iso(),
    }


def check_record(record: Mapping[str, Any]) -> None:
    """ValueError naming the first missing or unexpected field (what a writer must refuse)."""
    missing = [name for name in FIELD_NAMES if name not in record]
    extra = [name for name in record if name not in FIELD_TYPES]
    if missing or extra:
        raise ValueError(f"record fields do not match the layer: missing {missing}, unexpected {extra}")


def run_metadata(before: str, after: str, bands: str, nodata: float | None, chip_size: int, overlap: int,
                 grid_hash: str, stretch: Mapping[str, Any]) -> dict[str, Any]:
    """The run parameters stored under RUN_METADATA_TAG (``bands`` as "1,2,3"; ``nodata`` None = as declared)."""
    return {"before": before, "after": after, "bands": bands, "nodata": nodata, "chip_size": chip_size,
            "overlap": overlap, "grid_hash": grid_hash, "stretch": dict(stretch)}
