"""Print the demo's captions next to the generator's ground truth (which chips it changed, and how)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import fiona


def main(gpkg: str, changes_json: str) -> int:
    truth = json.loads(Path(changes_json).read_text())
    changed_chips = {tuple(rc) for rc in truth["changed_chips"]}
    reference = {(c["chip"]["row"], c["chip"]["col"]): c["captions"][0] for c in truth["changes"]}
    with fiona.open(gpkg, layer="change_captions") as layer:
        rows = sorted((dict(f["properties"]) for f in layer), key=lambda p: (p["row"], p["col"]))
    agree = 0
    print(f"{'tile':>7}  {'truth':<9} {'predicted':<9} {'conf':>5}  caption   [generator's caption]")
    for p in rows:
        key = (p["row"], p["col"])
        is_changed = key in changed_chips
        predicted = {1: "changed", 0: "unchanged"}.get(p["changed"], p["status"])
        agree += (p["changed"] == 1) == is_changed and p["status"] == "ok"
        ref = f"   [{reference[key]}]" if key in reference else ""
        conf = f"{p['confidence']:.2f}" if p["confidence"] is not None else "-"
        print(f"r{key[0]}c{key[1]:<4}  {'changed' if is_changed else 'unchanged':<9} {predicted:<9} {conf:>5}  "
              f"{p['caption'] or p['error'] or ''}{ref}")
    captioned = sum(p["status"] == "ok" for p in rows)
    print(f"{len(rows)} tiles, {len(changed_chips)} changed by the generator, {captioned} captioned "
          f"({len(rows) - captioned} not: mostly nodata at the scene's edge); change/no-change agreement on the "
          f"captioned tiles {agree}/{captioned} ({100 * agree / max(captioned, 1):.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
