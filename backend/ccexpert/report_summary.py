"""The report's summary by kind of change (issue 27): a table at the top (kind of change -> tiles, objects, share of
the area of interest) and filters that show the cards of one kind. Kept apart from ``report.py``'s page layout.

Objects are counted per change area (``core.areas``), so objects in the overlap of two chips count once; a kind
whose captions give no number for some objects ("several houses") shows the counted ones with a "+". The share is
the area of the kind's tiles over the area of all tiles (both as unions, so overlapping chips count once)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from ccexpert_changes.core.areas import group_areas
from shapely.geometry import box
from shapely.ops import unary_union


def _kinds(tiles: Sequence[dict]) -> list[str]:
    """Kinds of change of the changed tiles, most tiles first (ties by name)."""
    counts: dict[str, int] = {}
    for t in tiles:
        if t.get("status") == "ok" and t.get("changed") == 1 and t.get("change_kind"):
            counts[t["change_kind"]] = counts.get(t["change_kind"], 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k))


def summary_table(tiles: Sequence[dict]) -> str:
    """HTML table: one row per kind of change (tiles, objects, share of the area of interest); "" without changes."""
    kinds = _kinds(tiles)
    if not kinds:
        return ""
    whole = unary_union([box(*t["bounds"]) for t in tiles]).area or 1.0
    areas = group_areas(tiles)
    rows = []
    for kind in kinds:
        members = [t for t in tiles if t.get("change_kind") == kind and t.get("changed") == 1]
        share = unary_union([box(*t["bounds"]) for t in members]).area / whole
        counts = [a.n_objects for a in areas if a.change_kind == kind]
        known = sum(c for c in counts if c is not None)
        if all(c is None for c in counts):
            objects = "not counted"
        else:
            objects = f"{known}+" if any(c is None for c in counts) else str(known)
        rows.append(
            f"<tr><td>{html.escape(kind)}</td><td>{len(members)}</td><td>{objects}</td><td>{share:.1%}</td></tr>"
        )
    return (
        '<table class="summary"><thead><tr><th>Kind of change</th><th>Tiles</th><th>Objects</th>'
        "<th>Share of the area</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        '<p class="meta">Objects as the captions count them, once per change area (a "+": some captions give no '
        "number).</p>"
    )


def kind_filters(tiles: Sequence[dict]) -> str:
    """Radio buttons over the cards (all kinds, or one) and the CSS that hides the other kinds' cards; "" without
    changes. Card titles carry ``data-kind`` (see :func:`card_kind_attribute`)."""
    kinds = _kinds(tiles)
    if not kinds:
        return ""
    buttons = ['<label><input type="radio" name="kind" id="kind-all" checked> all</label>']
    css = []
    for index, kind in enumerate(kinds):
        value = html.escape(kind, quote=True)
        buttons.append(f'<label><input type="radio" name="kind" id="kind-{index}"> {value}</label>')
        css.append(f'body:has(#kind-{index}:checked) .card:not(:has(h3[data-kind="{value}"])){{display:none}}')
    return f'<style>{"".join(css)}</style><p class="toggle kinds">Show: {" ".join(buttons)}</p>'


def card_kind_attribute(tile: dict) -> str:
    """The ``data-kind`` attribute of a tile's card title (empty for tiles without a kind)."""
    kind = tile.get("change_kind")
    return f' data-kind="{html.escape(kind, quote=True)}"' if kind else ""
