"""Print the demo's captions next to the generator's ground truth (which chips it changed, and how).

Exits 1 (the demo failed) when the output is not what the demo must give: a tile in error, a chip the nodata rule
does not excuse left uncaptioned, missing tiles, or fewer captioned tiles than chips lying wholly inside the scene.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import fiona

MAX_NODATA = 0.5  # the algorithm's default, which the demo uses


def problems(rows: list[dict], size: int, chip: int) -> list[str]:
    """What makes this output a failed demo (empty when it is fine)."""
    out = []
    expected_tiles = math.ceil(size / chip) ** 2
    # every chip lies inside the scene (the last row and column end at its edge) and the scene has no nodata
    inside = expected_tiles if size >= chip else 0
    if len(rows) != expected_tiles:
        out.append(f"{len(rows)} tiles in the output, the {size} px scene has {expected_tiles} chips of {chip} px")
    errors = [p for p in rows if p["status"] == "error"]
    if errors:
        out.append(f"{len(errors)} tile(s) in error, the first: {errors[0]['error']}")
    unexcused = [
        p for p in rows if p["status"] != "ok" and max(p["nodata_before"] or 0, p["nodata_after"] or 0) <= MAX_NODATA
    ]
    if unexcused:
        out.append(f"{len(unexcused)} tile(s) not captioned although under the nodata limit")
    captioned = sum(p["status"] == "ok" for p in rows)
    if captioned < inside:
        out.append(f"{captioned} tiles captioned, fewer than the {inside} chips of the scene")
    return out


def main(gpkg: str, changes_json: str) -> int:
    truth = json.loads(Path(changes_json).read_text())
    changed_chips = {tuple(rc) for rc in truth["changed_chips"]}
    reference = {(c["chip"]["row"], c["chip"]["col"]): c["captions"][0] for c in truth["changes"]}
    with fiona.open(gpkg, layer="change_captions") as layer:
        rows = sorted((dict(f["properties"]) for f in layer), key=lambda p: (p["row"], p["col"]))
    agree = 0
    print(f"{'tile':>7}  {'truth':<9} {'predicted':<9} {'conf':>5}  caption   [generator's caption]")
    for p in rows:
        key = (p["row"] - 1, p["col"] - 1)  # the layer counts rows and columns from 1, the generator from 0
        is_changed = key in changed_chips
        predicted = {1: "changed", 0: "unchanged"}.get(p["changed"], p["status"])
        agree += (p["changed"] == 1) == is_changed and p["status"] == "ok"
        ref = f"   [{reference[key]}]" if key in reference else ""
        conf = f"{p['confidence']:.2f}" if p["confidence"] is not None else "-"
        print(
            f"r{p['row']}c{p['col']:<4}  {'changed' if is_changed else 'unchanged':<9} {predicted:<9} {conf:>5}  "
            f"{p['caption'] or p['error'] or ''}{ref}"
        )
    captioned = sum(p["status"] == "ok" for p in rows)
    print(
        f"{len(rows)} tiles, {len(changed_chips)} changed by the generator, {captioned} captioned "
        f"({len(rows) - captioned} not captioned); change/no-change agreement on the "
        f"captioned tiles {agree}/{captioned} ({100 * agree / max(captioned, 1):.0f}%)"
    )
    found = problems(rows, int(truth["size"]), int(truth["chip_size"]))
    for problem in found:
        print(f"demo: FAILED: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
