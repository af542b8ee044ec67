"""A self-contained HTML report of a ``describe`` GeoPackage, written for the analyst who reads it.

- Overview: the area drawn over a downsampled before (or after: a toggle) mosaic of the rasters, with the chip grid,
  changed tiles outlined (the imagery stays readable), skipped and failed tiles hatched, a scale bar and the
  extent's coordinates. Edge tiles are drawn clipped to the rasters. A changed tile links to its card.
- One card per changed tile, titled by its row and column: before/after at the chip's own resolution with a swipe
  between them, a click to enlarge, and an optional outline of where the pixels differ most (a pixel comparison,
  not the model's own change map), the caption, and the confidence only when it tells tiles apart.

Images come from the rasters named in the GeoPackage's run metadata, through the same reader, nodata rule and
stretch as the run; if the rasters moved, pass their new paths. Everything is inlined (one file to send around).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from pathlib import Path

import numpy as np
from ccexpert_changes.core.fields import LAYER_NAME, STATUS_ERROR, STATUS_OK, STATUS_SKIPPED_NODATA
from ccexpert_changes.core.grid import Chip, ChipGrid
from ccexpert_changes.core.layer_metadata import read_abstract
from ccexpert_changes.core.stretch import Stretch, valid_mask
from PIL import Image, ImageFilter
from rasterio.enums import Resampling
from rasterio.windows import Window

from .gpkg_output import read_metadata, read_tiles
from .report_summary import card_kind_attribute, kind_filters, summary_table

log = logging.getLogger(__name__)

COLOURS = {"changed": "#ff7f00", "unchanged": "#ffffff", STATUS_SKIPPED_NODATA: "#9e9e9e", STATUS_ERROR: "#b51fd1"}
LABELS = {
    "changed": "changed",
    "unchanged": "no change",
    STATUS_SKIPPED_NODATA: "skipped (nodata)",
    STATUS_ERROR: "error",
}
MAP_WIDTH = 900
CONFIDENCE_SPREAD = 0.05  # below this spread over the tiles, confidence tells nothing and is not shown
DIFF_MIN_AREA = 0.002  # outlines smaller than this share of a chip are noise


def _kind(tile: dict) -> str:
    if tile["status"] == STATUS_OK:
        return "changed" if tile["changed"] else "unchanged"
    return tile["status"]


def _uri(image: Image.Image) -> str:
    """A data URI: JPEG for imagery (for display only: the report is meant to be sent around), PNG with alpha."""
    buffer = io.BytesIO()
    if image.mode == "RGBA":
        image.save(buffer, format="PNG", optimize=True)
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    image.save(buffer, format="JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _nice_length(limit: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above `limit`."""
    power = 10 ** math.floor(math.log10(limit))
    return max(step * power for step in (1, 2, 5) if step * power <= limit)


def _distance(value: float) -> str:
    return f"{value / 1000:g} km" if value >= 1000 else f"{value:g} m"


def difference_outline(before: np.ndarray, after: np.ndarray) -> Image.Image | None:
    """An RGBA overlay outlining where the two HxWx3 chips differ most, or None when nothing stands out.

    Each date is normalised per band (mean and spread), so a global change of light or season does not count;
    the absolute difference is smoothed and kept where it is far above its own typical level."""

    def norm(rgb: np.ndarray) -> np.ndarray:
        data = rgb.astype(np.float32)
        return (data - data.mean(axis=(0, 1))) / (data.std(axis=(0, 1)) + 8.0)

    diff = np.abs(norm(after) - norm(before)).mean(axis=2)  # in spreads; 40 levels per spread fit in 8 bits
    quantised = Image.fromarray(np.clip(diff * 40, 0, 255).astype(np.uint8))
    smooth = np.asarray(quantised.filter(ImageFilter.BoxBlur(2)), dtype=np.float32) / 40
    median = float(np.median(smooth))
    spread = float(np.median(np.abs(smooth - median))) + 1e-3
    mask = Image.fromarray(((smooth > max(median + 8 * spread, 0.8)) * 255).astype(np.uint8))
    # an opening drops thin strips (shadows moving with the sun, edges shifted by a pixel): blobs remain
    width = max(3, (min(before.shape[:2]) // 48) | 1)
    region = mask.filter(ImageFilter.MinFilter(width)).filter(ImageFilter.MaxFilter(width))
    if np.asarray(region, dtype=bool).mean() < DIFF_MIN_AREA:
        return None
    edge = np.asarray(region.filter(ImageFilter.MaxFilter(5)), dtype=bool) & ~np.asarray(
        region.filter(ImageFilter.MinFilter(3)), dtype=bool
    )
    overlay = np.zeros((*before.shape[:2], 4), dtype=np.uint8)
    overlay[edge] = (255, 0, 200, 255)
    return Image.fromarray(overlay, "RGBA")


class _Rasters:
    """The run's rasters, for the mosaic and the chips; remembers why when they cannot be used."""

    def __init__(self, meta: dict, before: str | None, after: str | None):
        from .raster_io import RasterPair

        self.problem: str | None = None
        self.pair = None
        try:
            self.pair = RasterPair(
                before or meta["before"], after or meta["after"], bands=meta.get("bands"), nodata=meta.get("nodata")
            )
            s = meta.get("stretch") or {}
            self.stretch = Stretch(tuple(s["lo"]), tuple(s["hi"]), bool(s.get("passthrough")))
            self.grid = ChipGrid(self.pair.grid, int(meta["chip_size"]), int(meta.get("overlap", 0)))
            if self.grid.grid_hash != meta.get("grid_hash"):
                raise ValueError("the rasters are not the ones this output was made from (grid hash differs)")
        except (KeyError, ValueError, OSError) as exc:
            self.problem = f"imagery unavailable: {exc}"
            log.warning(self.problem)
            self.close()

    @property
    def extent(self) -> tuple[float, float, float, float] | None:
        return None if self.pair is None else tuple(self.pair.overlap)

    def chips(self, tile: dict) -> tuple[np.ndarray, np.ndarray] | None:
        """(before, after) HxWx3 uint8 of the tile's chip, stretched as in the run."""
        if self.pair is None:
            return None
        chip: Chip = self.grid.chip(int(tile["row"]), int(tile["col"]))
        out = []
        for reader in (self.pair.before_reader, self.pair.after_reader):
            read = reader.read(chip)
            out.append(np.ascontiguousarray(self.stretch.apply(read.array, read.valid).transpose(1, 2, 0)))
        return out[0], out[1]

    def mosaic(self, bounds: tuple[float, float, float, float], width: int) -> tuple[Image.Image, Image.Image] | None:
        """Downsampled before and after images of `bounds` (`width` px wide), nodata light grey."""
        if self.pair is None:
            return None
        window = self.pair.window_of(bounds)
        height = max(1, round(width * window.height / max(window.width, 1)))
        images = []
        for reader in (self.pair.before_reader, self.pair.after_reader):
            x0, y0 = window.col_off + reader.offset[0], window.row_off + reader.offset[1]
            indexes = list(reader.bands) + ([reader.alpha_band] if reader.alpha_band else [])
            data = reader.src.read(
                indexes,
                window=Window(x0, y0, window.width, window.height),
                boundless=True,
                out_shape=(len(indexes), height, width),
                resampling=Resampling.average,
                fill_value=reader.nodata if reader.nodata is not None else 0,
            )
            valid = valid_mask(data[:3], reader.nodata)
            if reader.alpha_band:
                valid &= data[3] > 0
            rgb = self.stretch.apply(data[:3], valid).transpose(1, 2, 0).copy()
            rgb[~valid] = 238  # nodata: the page's light grey
            images.append(Image.fromarray(np.ascontiguousarray(rgb), "RGB"))
        return images[0], images[1]

    def close(self) -> None:
        if self.pair is not None:
            self.pair.close()
            self.pair = None


def shown_bounds(tiles: list[dict], extent: tuple[float, float, float, float] | None = None) -> tuple:
    """What the map shows: the tiles' union, clipped to the rasters' common extent when it is known."""
    union = (
        min(t["bounds"][0] for t in tiles),
        min(t["bounds"][1] for t in tiles),
        max(t["bounds"][2] for t in tiles),
        max(t["bounds"][3] for t in tiles),
    )
    if extent is None:
        return union
    return (max(union[0], extent[0]), max(union[1], extent[1]), min(union[2], extent[2]), min(union[3], extent[3]))


def overview_svg(
    tiles: list[dict],
    extent: tuple[float, float, float, float] | None = None,
    mosaic: tuple[Image.Image, Image.Image] | None = None,
    projected: bool = True,
) -> str:
    """The map: mosaic (before/after toggled by the page's radio buttons), grid, marks, scale bar (map units)."""
    xmin, ymin, xmax, ymax = shown_bounds(tiles, extent)
    scale = MAP_WIDTH / max(xmax - xmin, 1e-9)
    height = max(1.0, (ymax - ymin) * scale)
    bar_room = 34
    parts = [
        f'<svg class="map" viewBox="0 0 {MAP_WIDTH} {height + bar_room:.1f}" width="{MAP_WIDTH}" '
        f'height="{height + bar_room:.0f}" xmlns="http://www.w3.org/2000/svg">',
        '<defs><pattern id="hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="8" stroke="#555" stroke-width="2"/>'
        "</pattern></defs>",
    ]
    if mosaic is not None:
        for name, image in zip(("before", "after"), mosaic, strict=True):
            parts.append(
                f'<image class="img-{name}" x="0" y="0" width="{MAP_WIDTH}" height="{height:.1f}" '
                f'preserveAspectRatio="none" href="{_uri(image)}"/>'
            )
    else:
        parts.append(f'<rect x="0" y="0" width="{MAP_WIDTH}" height="{height:.1f}" fill="#eee"/>')
    for t in tiles:
        x0, y0 = max(t["bounds"][0], xmin), max(t["bounds"][1], ymin)
        x1, y1 = min(t["bounds"][2], xmax), min(t["bounds"][3], ymax)
        if x1 <= x0 or y1 <= y0:
            continue
        kind = _kind(t)
        where = f"row {t['row'] + 1}, column {t['col'] + 1}"
        label = html.escape(f"{where} ({LABELS[kind]}): {t.get('caption') or t.get('error') or ''}")
        geometry = (
            f'x="{(x0 - xmin) * scale:.2f}" y="{(ymax - y1) * scale:.2f}" width="{(x1 - x0) * scale:.2f}" '
            f'height="{(y1 - y0) * scale:.2f}"'
        )
        if kind == "changed":
            style = f'fill="{COLOURS[kind]}" fill-opacity="0.12" stroke="{COLOURS[kind]}" stroke-width="3"'
        elif kind == "unchanged":
            style = 'fill="none" stroke="#ffffff" stroke-opacity="0.7" stroke-width="0.8"'
        else:
            style = f'fill="url(#hatch)" fill-opacity="0.45" stroke="{COLOURS[kind]}" stroke-width="1.5"'
        rect = f'<rect class="tile {kind}" {geometry} {style}><title>{label}</title></rect>'
        parts.append(f'<a href="#{html.escape(t["tile_id"])}">{rect}</a>' if kind == "changed" else rect)
    width_m = xmax - xmin
    if projected and width_m > 0:
        length = _nice_length(width_m / 4)
        px = length * scale
        y = height + 14
        parts.append(
            f'<g class="scalebar"><rect x="10" y="{y:.1f}" width="{px:.1f}" height="6" fill="#222"/>'
            f'<rect x="{10 + px / 2:.1f}" y="{y:.1f}" width="{px / 2:.1f}" height="6" fill="#fff" '
            f'stroke="#222"/><text x="{14 + px:.1f}" y="{y + 7:.1f}" font-size="13">{_distance(length)}'
            "</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _card(tile: dict, chips: tuple[np.ndarray, np.ndarray] | None, show_confidence: bool) -> str:
    tid = html.escape(tile["tile_id"])
    title = f"Row {tile['row'] + 1}, column {tile['col'] + 1}"
    pics = ""
    if chips is not None:
        before, after = (Image.fromarray(c) for c in chips)
        outline = difference_outline(*chips)
        over = (
            f'<img class="diff" src="{_uri(outline)}" alt="where the pixels differ most">'
            if outline is not None
            else ""
        )
        b_uri, a_uri = _uri(before), _uri(after)
        pics = (
            f'<div class="compare" style="--w:{before.width}px">'
            f'<a href="#zoom" title="click to enlarge" onclick="zoom(this)"><img class="after" src="{a_uri}" '
            f'alt="after"><img class="top" src="{b_uri}" alt="before">{over}</a>'
            f'<input type="range" min="0" max="100" value="50" aria-label="swipe between before and after" '
            "oninput=\"this.parentNode.querySelector('.top').style.clipPath='inset(0 '+(100-this.value)+'% 0 0)'\">"
            '<div class="ends"><span>◀ before</span><span>after ▶</span></div></div>'
        )
        if outline is None:
            pics += '<p class="meta">no area stands out in a pixel comparison of the two dates</p>'
    facts = [
        f"nodata {tile['nodata_before'] or 0:.0%} / {tile['nodata_after'] or 0:.0%}",
        html.escape(tile.get("model") or ""),
    ]
    if show_confidence and tile.get("confidence") is not None:
        low = " (low)" if tile["confidence"] < 0.5 else ""
        facts.insert(0, f"confidence {tile['confidence']:.2f}{low}")
    return (
        f'<section class="card" id="{tid}"><h3{card_kind_attribute(tile)}>{title} <small>{tid}</small></h3>{pics}'
        f'<p class="caption">{html.escape(tile["caption"] or "")}</p><p class="meta">{" · ".join(facts)}</p>'
        "</section>"
    )


def build_report(
    gpkg: str | Path, output: str | Path, *, before: str | None = None, after: str | None = None, max_tiles: int = 200
) -> dict:
    """Write the HTML; returns counts (tiles, changed, shown) and whether the imagery could be read."""
    tiles, crs_wkt = read_tiles(gpkg)
    if not tiles:
        raise ValueError(f"{gpkg} holds no tiles")
    tiles.sort(key=lambda t: (t["row"], t["col"]))
    meta = read_metadata(gpkg)
    changed = [t for t in tiles if _kind(t) == "changed"]
    counts = {k: sum(1 for t in tiles if _kind(t) == k) for k in COLOURS}
    confidences = [t["confidence"] for t in tiles if t["status"] == STATUS_OK and t.get("confidence") is not None]
    show_confidence = bool(confidences) and max(confidences) - min(confidences) >= CONFIDENCE_SPREAD
    from pyproj import CRS

    crs = CRS.from_wkt(crs_wkt) if crs_wkt else None
    rasters = _Rasters(meta, before, after)
    try:
        extent = rasters.extent
        shown = shown_bounds(tiles, extent)
        mosaic = rasters.mosaic(shown, MAP_WIDTH)
        overview = overview_svg(tiles, extent, mosaic, projected=crs is None or crs.is_projected)
        cards = [_card(t, rasters.chips(t), show_confidence) for t in changed[:max_tiles]]
    finally:
        rasters.close()
    legend = " ".join(f'<span class="key {k}"></span>{LABELS[k]} ({counts[k]})' for k in COLOURS)
    more = (
        f"<p>{len(changed) - max_tiles} more changed tiles not shown (raise --max-tiles).</p>"
        if len(changed) > max_tiles
        else ""
    )
    problem = f'<p class="warn">{html.escape(rasters.problem)}</p>' if rasters.problem else ""
    crs_name = html.escape(crs.to_string() if crs is not None else "unknown CRS")
    coords = f"Extent x {shown[0]:.1f} – {shown[2]:.1f}, y {shown[1]:.1f} – {shown[3]:.1f} ({crs_name}); north up."
    if not show_confidence and confidences:
        conf_note = (
            f'<p class="meta">Confidence is {min(confidences):.2f}–{max(confidences):.2f} on every '
            "captioned tile, so it is not shown per tile.</p>"
        )
    else:
        conf_note = ""
    toggle = (
        '<p class="toggle"><label><input type="radio" name="date" id="show-before" checked> before</label> '
        '<label><input type="radio" name="date" id="show-after"> after</label> '
        '<label><input type="checkbox" id="show-diff" checked> outline where the pixels differ most</label></p>'
    )
    title = f"Change captions: {Path(gpkg).name}"
    sources = html.escape(f"before {meta.get('before', '?')} · after {meta.get('after', '?')}")
    layer_title, abstract = read_abstract(gpkg, LAYER_NAME)  # which model made the captions (demo flagged)
    about = ""
    if abstract:
        css = "warn" if "DEMO" in (layer_title or "") else "meta"
        about = f'<p class="{css}">{html.escape(abstract)}</p>'
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1000px}}
.map{{border:1px solid #ccc;background:#f4f4f4;display:block}}
.key{{display:inline-block;width:1em;height:1em;margin:0 .3em 0 1em;vertical-align:middle;border:2px solid #999}}
.key.changed{{border-color:#ff7f00}} .key.skipped_nodata{{background:#bbb}} .key.error{{border-color:#b51fd1}}
body:has(#show-after:checked) .img-before{{display:none}}
body:has(#show-before:checked) .img-after{{display:none}}
body:has(#show-diff:not(:checked)) .diff{{display:none}}
.card{{border-top:1px solid #ddd;padding:1em 0}} .card h3 small{{color:#888;font-weight:normal;font-size:.7em}}
.compare{{position:relative;width:var(--w);max-width:100%}} .compare a{{display:block;position:relative}}
.compare img{{display:block;width:100%;image-rendering:pixelated}}
.compare img.top,.compare img.diff{{position:absolute;top:0;left:0}}
.compare img.top{{clip-path:inset(0 50% 0 0)}}
.compare input{{width:100%}} .ends{{display:flex;justify-content:space-between;font-size:.8em;color:#666}}
#zoom{{display:none}} #zoom:target{{display:flex;gap:1em;position:fixed;inset:0;background:rgba(0,0,0,.85);
padding:2em;z-index:9;align-items:center;justify-content:center}}
#zoom figure{{margin:0}} #zoom img{{width:min(45vw,768px);image-rendering:pixelated}}
#zoom figcaption{{color:#fff;text-align:center}} #zoom .close{{position:absolute;top:1em;right:2em;color:#fff}}
.caption{{font-size:1.15em}} .meta{{color:#666;font-size:.85em}} .warn{{color:#a00}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{sources}</p>
{about}
<p>{len(tiles)} tiles: {counts["changed"]} changed, {counts["unchanged"]} without change, \
{counts[STATUS_SKIPPED_NODATA]} skipped (nodata), {counts[STATUS_ERROR]} errors.</p>
{conf_note}
{summary_table(tiles)}
<h2>Overview</h2>
{toggle}
<div>{legend}</div>
{overview}
<p class="meta">{coords} Click a changed tile to see it below.</p>
<h2>Changed tiles</h2>
{kind_filters(tiles)}
{problem}{more}
{"".join(cards) or "<p>No changed tiles.</p>"}
<div id="zoom"><a href="#" class="close">close ×</a><figure><img id="zoom-before" alt="before">
<figcaption>before</figcaption></figure><figure><img id="zoom-after" alt="after"><figcaption>after</figcaption>
</figure></div>
<script>
function zoom(link) {{  // the enlarged pair: the card's own images, not a second copy in the file
  document.getElementById("zoom-before").src = link.querySelector(".top").src;
  document.getElementById("zoom-after").src = link.querySelector(".after").src;
}}
</script>
</body></html>
"""
    Path(output).write_text(page, encoding="utf-8")
    return {"tiles": len(tiles), "changed": len(changed), "shown": len(cards), "thumbnails": rasters.problem is None}
