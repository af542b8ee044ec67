"""A self-contained HTML report of a ``describe`` GeoPackage: overview map of every tile, then before/after
thumbnails and the caption of each changed tile. Images are inlined as data URIs (one file to send around).

Thumbnails are read again from the rasters named in the GeoPackage's run metadata, through the same reader,
nodata rule and stretch as the run; if the rasters moved, pass their new paths.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path

import numpy as np
from ccexpert_changes.core.fields import STATUS_ERROR, STATUS_OK, STATUS_SKIPPED_NODATA
from ccexpert_changes.core.grid import Chip, ChipGrid
from ccexpert_changes.core.stretch import Stretch
from PIL import Image

from .gpkg_output import read_metadata, read_tiles

log = logging.getLogger(__name__)

COLOURS = {"changed": "#e4572e", "unchanged": "#76b041", STATUS_SKIPPED_NODATA: "#b0b0b0", STATUS_ERROR: "#7b2cbf"}
MAP_WIDTH = 900


def _kind(tile: dict) -> str:
    if tile["status"] == STATUS_OK:
        return "changed" if tile["changed"] else "unchanged"
    return tile["status"]


def _png_uri(rgb: np.ndarray, size: int) -> str:
    image = Image.fromarray(rgb)
    if image.size[0] != size:
        image = image.resize((size, size), Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def overview_svg(tiles: list[dict]) -> str:
    """Tiles as rectangles in map coordinates (y up), coloured by outcome; changed tiles link to their card."""
    xmin = min(t["bounds"][0] for t in tiles)
    ymin = min(t["bounds"][1] for t in tiles)
    xmax = max(t["bounds"][2] for t in tiles)
    ymax = max(t["bounds"][3] for t in tiles)
    scale = MAP_WIDTH / max(xmax - xmin, 1e-9)
    height = max(1.0, (ymax - ymin) * scale)
    parts = [f'<svg class="map" viewBox="0 0 {MAP_WIDTH} {height:.1f}" width="{MAP_WIDTH}" height="{height:.0f}" '
             'xmlns="http://www.w3.org/2000/svg">']
    for t in tiles:
        x0, y0, x1, y1 = t["bounds"]
        kind = _kind(t)
        label = html.escape(f"{t['tile_id']} ({kind}): {t.get('caption') or t.get('error') or ''}")
        rect = (f'<rect x="{(x0 - xmin) * scale:.2f}" y="{(ymax - y1) * scale:.2f}" width="{(x1 - x0) * scale:.2f}" '
                f'height="{(y1 - y0) * scale:.2f}" fill="{COLOURS[kind]}" fill-opacity="0.75" stroke="#333" '
                f'stroke-width="0.5"><title>{label}</title></rect>')
        parts.append(f'<a href="#{t["tile_id"]}">{rect}</a>' if kind == "changed" else rect)
    parts.append("</svg>")
    return "".join(parts)


class _Thumbs:
    """Reads tile thumbnails from the run's rasters; remembers why when it cannot."""

    def __init__(self, meta: dict, before: str | None, after: str | None, size: int):
        from .raster_io import RasterPair

        self.size = size
        self.problem: str | None = None
        self.rasters = None
        try:
            self.rasters = RasterPair(before or meta["before"], after or meta["after"], bands=meta.get("bands"),
                                      nodata=meta.get("nodata"))
            s = meta.get("stretch") or {}
            self.stretch = Stretch(tuple(s["lo"]), tuple(s["hi"]), bool(s.get("passthrough")))
            self.grid = ChipGrid(self.rasters.grid, int(meta["chip_size"]), int(meta.get("overlap", 0)))
            if self.grid.grid_hash != meta.get("grid_hash"):
                raise ValueError("the rasters are not the ones this output was made from (grid hash differs)")
        except (KeyError, ValueError, OSError) as exc:
            self.problem = f"thumbnails unavailable: {exc}"
            log.warning(self.problem)
            self.close()

    def pair(self, tile: dict) -> tuple[str, str] | None:
        if self.rasters is None:
            return None
        chip: Chip = self.grid.chip(int(tile["row"]), int(tile["col"]))
        out = []
        for reader in (self.rasters.before_reader, self.rasters.after_reader):
            read = reader.read(chip)
            rgb = np.ascontiguousarray(self.stretch.apply(read.array, read.valid).transpose(1, 2, 0))
            out.append(_png_uri(rgb, self.size))
        return out[0], out[1]

    def close(self) -> None:
        if self.rasters is not None:
            self.rasters.close()
            self.rasters = None


def build_report(gpkg: str | Path, output: str | Path, *, before: str | None = None, after: str | None = None,
                 max_tiles: int = 200, thumb_size: int = 192) -> dict:
    """Write the HTML; returns counts (tiles, changed, shown)."""
    tiles, _ = read_tiles(gpkg)
    if not tiles:
        raise ValueError(f"{gpkg} holds no tiles")
    tiles.sort(key=lambda t: (t["row"], t["col"]))
    meta = read_metadata(gpkg)
    changed = [t for t in tiles if _kind(t) == "changed"]
    counts = {k: sum(1 for t in tiles if _kind(t) == k) for k in COLOURS}
    thumbs = _Thumbs(meta, before, after, thumb_size)
    cards = []
    try:
        for t in changed[:max_tiles]:
            images = thumbs.pair(t)
            pics = ""
            if images:
                pics = (f'<figure><img src="{images[0]}" alt="before"><figcaption>before</figcaption></figure>'
                        f'<figure><img src="{images[1]}" alt="after"><figcaption>after</figcaption></figure>')
            confidence = f"{t['confidence']:.2f}" if t.get("confidence") is not None else "n/a"
            cards.append(
                f'<section class="card" id="{html.escape(t["tile_id"])}"><h3>{html.escape(t["tile_id"])}</h3>'
                f'<div class="pics">{pics}</div><p class="caption">{html.escape(t["caption"] or "")}</p>'
                f'<p class="meta">confidence {confidence} · nodata {t["nodata_before"] or 0:.0%} / '
                f'{t["nodata_after"] or 0:.0%} · {html.escape(t.get("model") or "")}</p></section>'
            )
    finally:
        thumbs.close()
    legend = " ".join(f'<span class="key" style="background:{c}"></span>{k.replace("_", " ")} ({counts[k]})'
                      for k, c in COLOURS.items())
    more = (f"<p>{len(changed) - max_tiles} more changed tiles not shown (raise --max-tiles).</p>"
            if len(changed) > max_tiles else "")
    problem = f'<p class="warn">{html.escape(thumbs.problem)}</p>' if thumbs.problem else ""
    title = f"Change captions: {Path(gpkg).name}"
    sources = html.escape(f"before {meta.get('before', '?')} · after {meta.get('after', '?')}")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} .map{{border:1px solid #ccc;background:#f8f8f8}}
.key{{display:inline-block;width:1em;height:1em;margin:0 .3em 0 1em;vertical-align:middle}}
.card{{border-top:1px solid #ddd;padding:1em 0}} .pics{{display:flex;gap:1em}} figure{{margin:0}}
figcaption{{font-size:.8em;color:#666;text-align:center}} .caption{{font-size:1.1em}}
.meta{{color:#666;font-size:.85em}}
.warn{{color:#a00}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{sources}</p>
<p>{len(tiles)} tiles: {counts['changed']} changed, {counts['unchanged']} unchanged, {counts[STATUS_SKIPPED_NODATA]}
skipped (nodata), {counts[STATUS_ERROR]} errors.</p>
<h2>Overview</h2>
<div>{legend}</div>
{overview_svg(tiles)}
<h2>Changed tiles</h2>
{problem}{more}
{''.join(cards) or '<p>No changed tiles.</p>'}
</body></html>
"""
    Path(output).write_text(page, encoding="utf-8")
    return {"tiles": len(tiles), "changed": len(changed), "shown": len(cards), "thumbnails": thumbs.problem is None}
