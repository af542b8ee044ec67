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
import shapely
from ccexpert_changes.core.context import MAX_CONTEXT_CHARS
from ccexpert_changes.core.dates import parse_date
from ccexpert_changes.core.fields import LAYER_NAME, STATUS_ERROR, STATUS_OK, STATUS_SKIPPED_NODATA
from ccexpert_changes.core.grid import Chip, ChipGrid, parse_tile_id
from ccexpert_changes.core.layer_metadata import read_abstract
from ccexpert_changes.core.stretch import Stretch
from PIL import Image, ImageFilter
from shapely.geometry.base import BaseGeometry

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
AOI_COLOUR = "#1f78b4"
MAP_WIDTH = 900
CONFIDENCE_SPREAD = 0.05  # below this spread over the tiles, confidence tells nothing and is not shown
DIFF_MIN_AREA = 0.002  # outlines smaller than this share of a chip are noise


def grid_index(tile: dict) -> tuple[int, int]:
    """The chip's (row, col) in the grid (0-based), from the tile id: outputs written before the layer's row and
    column became 1-based (issue 25.8) hold 0-based ones, and the tile id is the same in both."""
    row, col, _ = parse_tile_id(tile["tile_id"])
    return row, col


def place(tile: dict) -> tuple[int, int]:
    """Row and column as people count them (1-based), as the layer's ``row`` and ``col`` fields hold them."""
    row, col = grid_index(tile)
    return row + 1, col + 1


def _format_date(date: tuple[int, int, int]) -> str:
    year, month, day = date
    return f"{year:04d}-{month:02d}-{day:02d}" if day else (f"{year:04d}-{month:02d}" if month else f"{year:04d}")


def raster_date(path: str, dataset=None) -> tuple[str, str] | None:
    """(date, where it was read) of a raster, the way the plugin's dialog finds them (``core.dates``): the
    acquisition date in its IMAGERY metadata, the TIFF date tag, else a date in its file name; None when none."""
    if dataset is not None:
        tags = {**dataset.tags(), **dataset.tags(ns="IMAGERY")}
        for key in ("ACQUISITIONDATETIME", "TIFFTAG_DATETIME"):
            found = parse_date(tags.get(key))
            if found:
                return _format_date(found), key
    found = parse_date(Path(path).name)
    return (_format_date(found), "file name") if found else None


def dates_html(paths: dict, datasets: tuple | None) -> str:
    """One line per date: its raster and its date with where the date was read (or "date unknown")."""
    lines = []
    for i, label in enumerate(("Before", "After")):
        path = str(paths.get(label.lower(), "?"))
        found = raster_date(path, datasets[i] if datasets else None)
        when = f"{found[0]} <small>(from the {html.escape(found[1])})</small>" if found else "date unknown"
        lines.append(f"<li>{label}: <b>{when}</b> · {html.escape(path)}</li>")
    return f'<ul class="dates">{"".join(lines)}</ul>'


def aoi_path(aoi: BaseGeometry, xmin: float, ymax: float, scale: float) -> str:
    """The area of interest as an SVG path over the overview (map x right, y up; SVG y down)."""
    rings = []
    for polygon in getattr(aoi, "geoms", [aoi]):
        if polygon.geom_type != "Polygon":
            continue
        for ring in (polygon.exterior, *polygon.interiors):
            points = " L ".join(f"{(x - xmin) * scale:.1f} {(ymax - y) * scale:.1f}" for x, y in ring.coords)
            rings.append(f"M {points} Z")
    return (
        f'<path class="aoi" d="{" ".join(rings)}" fill="none" fill-rule="evenodd" stroke="{AOI_COLOUR}" '
        'stroke-width="2.5" stroke-dasharray="8 5"><title>area of interest</title></path>'
    )


def tiles_table(tiles: list[dict], cards: set[str], show_confidence: bool) -> str:
    """Every tile in grid order: where, what, the caption (or the error); changed tiles shown above link to their
    card."""
    head = "<th>Row</th><th>Column</th><th>Status</th><th>What changed</th>" + (
        "<th>Confidence</th>" if show_confidence else ""
    )
    rows = []
    for t in tiles:
        row, col = place(t)
        kind = _kind(t)
        text = html.escape(t.get("caption") or t.get("error") or "")
        if t["tile_id"] in cards:
            text = f'<a href="#{html.escape(t["tile_id"])}">{text}</a>'
        conf = ""
        if show_confidence:
            conf = f"<td>{t['confidence']:.2f}</td>" if t.get("confidence") is not None else "<td></td>"
        rows.append(f'<tr class="{kind}"><td>{row}</td><td>{col}</td><td>{LABELS[kind]}</td><td>{text}</td>{conf}</tr>')
    return f'<table class="tiles"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


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
        return None if self.pair is None else self.pair.overlap  # a Bounds tuple

    def chips(self, tile: dict) -> tuple[np.ndarray, np.ndarray] | None:
        """(before, after) HxWx3 uint8 of the tile's chip, stretched as in the run."""
        if self.pair is None:
            return None
        chip: Chip = self.grid.chip(*grid_index(tile))
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
            data, valid = reader.overview(window, (height, width))
            rgb = self.stretch.apply(data, valid).transpose(1, 2, 0).copy()
            rgb[~valid] = 238  # nodata: the page's light grey
            transform = self.pair.before.transform
            if transform.e > 0:  # a south-up raster: its first row is the south; the map is north up
                rgb = rgb[::-1]
            if transform.a < 0:
                rgb = rgb[:, ::-1]
            images.append(Image.fromarray(np.ascontiguousarray(rgb), "RGB"))
        return images[0], images[1]

    def close(self) -> None:
        if self.pair is not None:
            self.pair.close()
            self.pair = None


def context_html(meta: dict) -> str:
    """The run's context note (run metadata ``context``, issue 27 item 7) as the line under the title; empty when
    the run had none. Read from a file that may come from anywhere: escaped, and only a string is shown."""
    note = meta.get("context")
    if not isinstance(note, str) or not note.strip():
        return ""
    return f'<p class="context">Context: {html.escape(" ".join(note.split())[:MAX_CONTEXT_CHARS])}</p>'


def _stored_aoi(meta: dict) -> BaseGeometry | None:
    """The run's area of interest (WKT in the before CRS, run metadata ``aoi``), or None (no AOI, or unreadable)."""
    if not meta.get("aoi"):
        return None
    try:
        return shapely.from_wkt(meta["aoi"])
    except (shapely.errors.GEOSException, TypeError, ValueError):
        log.warning("the run's area of interest could not be read; it is not outlined")
        return None


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
    aoi: BaseGeometry | None = None,
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
        where = "row {}, column {}".format(*place(t))
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
    if aoi is not None and not aoi.is_empty:
        parts.append(aoi_path(aoi, xmin, ymax, scale))
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
    title = "Row {}, column {}".format(*place(tile))
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
    """Write the HTML; returns counts (tiles, changed, shown) and whether the imagery could be read. The page is
    written to a temporary file next to ``output`` and moved into place only when complete, and never over the
    GeoPackage or a raster it was made from."""
    target = Path(output).resolve()
    if target == Path(gpkg).resolve():
        raise ValueError(f"the report {output} would replace the GeoPackage it describes; pick an .html file")
    tiles, crs_wkt = read_tiles(gpkg)
    if not tiles:
        raise ValueError(f"{gpkg} holds no tiles")
    tiles.sort(key=grid_index)
    meta = read_metadata(gpkg)
    rasters_used = (before or meta.get("before"), after or meta.get("after"))
    if any(path and Path(path).resolve() == target for path in rasters_used):
        raise ValueError(f"the report {output} would replace a raster of the run; pick an .html file")
    changed = [t for t in tiles if _kind(t) == "changed"]
    counts = {k: sum(1 for t in tiles if _kind(t) == k) for k in COLOURS}
    confidences = [t["confidence"] for t in tiles if t["status"] == STATUS_OK and t.get("confidence") is not None]
    show_confidence = bool(confidences) and max(confidences) - min(confidences) >= CONFIDENCE_SPREAD
    from pyproj import CRS

    crs = CRS.from_wkt(crs_wkt) if crs_wkt else None
    aoi = _stored_aoi(meta)
    rasters = _Rasters(meta, before, after)
    try:
        extent = rasters.extent
        shown = shown_bounds(tiles, extent)
        mosaic = rasters.mosaic(shown, MAP_WIDTH)
        overview = overview_svg(tiles, extent, mosaic, projected=crs is None or crs.is_projected, aoi=aoi)
        cards = [_card(t, rasters.chips(t), show_confidence) for t in changed[:max_tiles]]
        paths = {"before": before or meta.get("before", "?"), "after": after or meta.get("after", "?")}
        datasets = (rasters.pair.before, rasters.pair.after) if rasters.pair is not None else None
        dates = dates_html(paths, datasets)
    finally:
        rasters.close()
    legend = " ".join(f'<span class="key {k}"></span>{LABELS[k]} ({counts[k]})' for k in COLOURS)
    if aoi is not None:
        legend += ' <span class="key aoi"></span>area of interest'
    made = sorted(t["created_utc"] for t in tiles if t.get("created_utc"))
    when = f'<p class="meta">Captioned {made[0]} – {made[-1]} (UTC).</p>' if made else ""
    table = tiles_table(tiles, {t["tile_id"] for t in changed[:max_tiles]}, show_confidence)
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
.context{{font-size:1.1em;font-style:italic}}
.key.aoi{{border:2px dashed {AOI_COLOUR}}} .dates{{list-style:none;padding:0}} .dates small{{color:#666}}
table.tiles{{border-collapse:collapse;width:100%;font-size:.9em}} .tiles th,.tiles td{{text-align:left;
padding:.25em .5em;border-bottom:1px solid #eee;vertical-align:top}} .tiles tr.changed td:nth-child(3){{color:#c25e00}}
.tiles tr.error td:nth-child(3){{color:#b51fd1}}
</style></head><body>
<h1>{html.escape(title)}</h1>
{context_html(meta)}
{dates}
{when}
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
<h2>All tiles</h2>
{table}
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
    partial = target.with_name(target.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)
    return {"tiles": len(tiles), "changed": len(changed), "shown": len(cards), "thumbnails": rasters.problem is None}
