"""Which of the open rasters is Before and which After, when the dialog opens from the toolbar: two different
rasters, the older one as Before when their names or metadata carry dates, else what their names say ("before"/
"after", "t1"/"t2", "A"/"B", "pre"/"post", "old"/"new"). Qt-free; the dialog hands in layer names and the dates
GDAL reports (TIFFTAG_DATETIME, IMAGERY ACQUISITIONDATETIME).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# a year 1900-2099, optionally followed by a month and a day, separated by -, _, ., :, / or nothing (20190501)
_DATE = re.compile(
    r"(?<!\d)((?:19|20)\d\d)"
    r"(?:([-_.:/]?)(0[1-9]|1[0-2])(?:\2(0[1-9]|[12]\d|3[01]))?)?"
    r"(?!\d)"
)
_BEFORE = {"before", "pre", "old", "older", "t0", "t1", "a", "first", "earlier", "ante"}
_AFTER = {"after", "post", "new", "newer", "t2", "b", "second", "later"}


def parse_date(text: str | None) -> tuple[int, int, int] | None:
    """The first date in ``text`` as (year, month, day), month and day 0 when not given: "2019" -> (2019, 0, 0),
    "2019-05-01", "20190501", "2019:05:01 10:00:00" (TIFF) -> (2019, 5, 1); None when there is none."""
    if not text:
        return None
    for match in _DATE.finditer(str(text)):
        year, _sep, month, day = match.groups()
        if month and not day and not _sep:  # "201905" is too ambiguous without a separator
            continue
        return int(year), int(month or 0), int(day or 0)
    return None


def role_hint(name: str | None) -> int | None:
    """0 when a layer name says it is the earlier image ("before", "t1", "A", "pre", ...), 1 when it says later,
    None when it says neither or both."""
    tokens = {t for t in re.split(r"[^0-9a-z]+", str(name or "").lower()) if t}
    early, late = bool(tokens & _BEFORE), bool(tokens & _AFTER)
    if early == late:
        return None
    return 0 if early else 1


def pick_pair(names_and_dates: Sequence[tuple[str, str | None]]) -> tuple[int, int] | None:
    """Indices (before, after) of two different entries of ``names_and_dates`` ((layer name, date text from its
    metadata or None), in the order the layers were added), or None with fewer than two entries.

    Dates come from the metadata, else from the name. The pair is the first entry saying "before" with the first
    saying "after"; else the first two entries with different dates; else the first two. Of the pair, the older
    date is Before; without two different dates, the names decide; else the order given."""
    if len(names_and_dates) < 2:
        return None
    dates = [parse_date(meta) or parse_date(name) for name, meta in names_and_dates]
    hints = [role_hint(name) for name, _ in names_and_dates]
    early = [i for i, h in enumerate(hints) if h == 0]
    late = [i for i, h in enumerate(hints) if h == 1]
    if early and late:
        pair = (early[0], late[0])
    else:
        dated = [i for i, d in enumerate(dates) if d is not None]
        pair = next(((i, j) for i in dated for j in dated if i < j and dates[i] != dates[j]), (0, 1))
    i, j = sorted(pair)
    di, dj = dates[i], dates[j]
    if di is not None and dj is not None and di != dj:
        return (i, j) if di < dj else (j, i)
    if hints[i] == 1 or hints[j] == 0:
        return j, i
    return i, j


def order_pair(names_and_dates: Sequence[tuple[str, str | None]]) -> tuple[str, str] | None:
    """(before name, after name) chosen by :func:`pick_pair`."""
    picked = pick_pair(names_and_dates)
    return None if picked is None else (names_and_dates[picked[0]][0], names_and_dates[picked[1]][0])


__all__ = ["order_pair", "parse_date", "pick_pair", "role_hint"]
