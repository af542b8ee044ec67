"""The LEVIR-CC vocabulary of change captions, shared by the caption parser (``core.facts``), the training
package's key-word lexicon (``ccexpert_training.keywords``) and the no-change test (``ccexpert.nochange``).

Stdlib only: QGIS's Python imports it through ``core.facts``. The word lists are grounded in the LEVIR-CC train/val
references (counts in comments are occurrences in its 34k references); each table maps a grammatical slot to meaning
groups of (near-)synonyms. One copy: the other packages import these tables from here.
"""

from __future__ import annotations

NO_CHANGE_CAPTIONS: tuple[str, ...] = (
    "there is no difference",
    "the two scenes seem identical",
    "the scene is the same as before",
    "no change has occurred",
    "almost nothing has changed",
)

_NO_CHANGE_SET = frozenset(NO_CHANGE_CAPTIONS) | {"nothing has changed", "there is no change", "no change"}


def normalise_caption(text: str) -> str:
    """The LEVIR-CC evaluation normalisation: lower-case, drop every '.', collapse whitespace."""
    return " ".join(text.lower().replace(".", " ").split())


def is_no_change(text: str) -> bool:
    """True when ``text`` is a no-change caption (case, periods and spacing ignored)."""
    return normalise_caption(text) in _NO_CHANGE_SET


# Each table: slot -> {meaning group -> words}. Words of one group are (near-)synonyms in LEVIR-CC usage, e.g.
# house/building/villa (8179/3572/2117 plural uses) describe the same thing, so they are one group.
OBJECTS: dict[str, dict[str, tuple[str, ...]]] = {
    "singular": {
        "building": (
            "building",
            "house",
            "villa",
            "bungalow",
            "cottage",
            "mansion",
            "hut",
            "cabin",
            "warehouse",
            "factory",
            "tower",
            "longhouse",
        ),
        "road": (
            "road",
            "street",
            "path",
            "lane",
            "track",
            "trail",
            "footpath",
            "crossroad",
            "intersection",
            "roundabout",
            "t-junction",
            "viaduct",
            "bridge",
            "overpass",
        ),
        "vegetation": ("tree", "forest", "woodland", "meadow", "grassland", "lawn", "jungle", "pasture"),
        "water": ("lake", "pond", "river", "pool", "reservoir"),
        "vehicle": ("car", "truck", "vehicle", "bus"),
        "sports": ("playground", "court", "stadium"),
        "bareland": ("desert", "wasteland", "clearing", "moorland"),
    },
    "plural": {
        "building": (
            "buildings",
            "houses",
            "villas",
            "bungalows",
            "cottages",
            "mansions",
            "huts",
            "cabins",
            "warehouses",
            "factories",
            "towers",
            "longhouses",
            "rooms",
            "structures",
        ),
        "road": (
            "roads",
            "streets",
            "paths",
            "lanes",
            "tracks",
            "trails",
            "crossroads",
            "intersections",
            "viaducts",
            "bridges",
            "overpasses",
        ),
        "vegetation": ("trees", "woods", "forests", "plants", "bushes", "shrubs", "meadows", "grasslands", "woodlands"),
        "water": ("lakes", "ponds", "rivers", "pools", "reservoirs"),
        "vehicle": ("cars", "trucks", "vehicles", "buses"),
        "sports": ("playgrounds", "courts", "stadiums"),
        "bareland": ("deserts", "wastelands", "barelands"),
    },
    "mass": {
        "vegetation": ("vegetation", "grass"),
        "bareland": ("bareland", "land", "sand"),
        "water": ("water",),
    },
}

VERBS: dict[str, dict[str, tuple[str, ...]]] = {
    # "has been built" / "are removed": passive participles of building vs removing (8870 built, 1747 removed).
    "participle": {
        "build": ("built", "constructed", "erected", "added"),
        "remove": ("removed", "demolished", "cleared", "knocked", "bulldozed", "flattened", "leveled"),
        "widen": ("widened", "broadened", "expanded", "enlarged", "extended", "lengthened"),
    },
    # "trees have decreased": intransitive change of amount.
    "participle-intransitive": {"increase": ("increased",), "decrease": ("decreased", "reduced")},
    # "houses appear" / "a road disappears": intransitive appearing vs vanishing.
    "plain": {"appear": ("appear", "emerge"), "disappear": ("disappear", "vanish")},
    "third": {"appear": ("appears", "emerges"), "disappear": ("disappears", "vanishes")},
    "past": {"appear": ("appeared", "emerged"), "disappear": ("disappeared", "vanished")},
    "third-amount": {"increase": ("increases",), "decrease": ("decreases",)},
}
# Recognised as change verbs but never swapped: their objects/particles ("developed into", "replaced by",
# "rebuilt into", "cut down") would not fit a replacement.
FIXED_VERBS: dict[str, tuple[str, ...]] = {
    "build": (
        "planted",
        "rebuilt",
        "reconstructed",
        "developed",
        "completed",
        "renovated",
        "restored",
        "build",
        "builds",
    ),
    "remove": ("cut", "gone", "missing", "withered"),
    "replace": (
        "replace",
        "replaced",
        "replaces",
        "replacing",
        "converted",
        "transformed",
        "turned",
        "becomes",
        "become",
        "became",
    ),
}

DIRECTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    # Only same-axis opposites, so "top left corner" -> "bottom left corner", never "left left corner".
    "axis-tb": {"top": ("top",), "bottom": ("bottom",)},
    "axis-ul": {"upper": ("upper",), "lower": ("lower",)},
    "axis-lr": {"left": ("left",), "right": ("right",)},
    "axis-ab": {"above": ("above",), "below": ("below",)},
    "corner": {
        "lower-left": ("lower-left", "bottom-left"),
        "lower-right": ("lower-right", "bottom-right"),
        "upper-left": ("upper-left", "top-left"),
        "upper-right": ("upper-right", "top-right"),
    },
    "orientation": {"vertical": ("vertical",), "horizontal": ("horizontal",)},
    "orientation-adv": {"vertically": ("vertically",), "horizontally": ("horizontally",)},
}
FIXED_DIRECTIONS: dict[str, tuple[str, ...]] = {"center": ("middle", "center", "centre", "central")}

QUANTITIES: dict[str, dict[str, tuple[str, ...]]] = {
    # Numerals with a plural noun (6560 "two" ... 58 "five"). "one" is left out: mostly a pronoun ("the original
    # one"). Vague quantifiers are near-synonyms of each other ("some"/"several"/"a few"), so they are never swapped.
    "numeral": {w: (w,) for w in ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")},
}
FIXED_QUANTITIES: dict[str, tuple[str, ...]] = {
    "one": ("one", "single"),
    "many": ("many", "numerous"),
    "some": ("some", "several", "few"),
    "all": ("all", "most"),
}


# Nouns the caption parser (core.facts) needs beyond the tables above, by fact object class
# (words LEVIR-CC uses for the same classes).
FACT_NOUNS: dict[str, tuple[str, ...]] = {
    "building": (
        "construction",
        "constructions",
        "room",
        "structure",
        "complex",
        "complexes",
        "mall",
        "malls",
        "apartment",
        "apartments",
        "residence",
        "residences",
        "villages",
        "village",
        "houses",
        "dwelling",
        "dwellings",
        "shed",
        "sheds",
        "greenhouse",
        "greenhouses",
        "workshop",
        "workshops",
        "residential",
    ),
    "road": (
        "flyover",
        "flyovers",
        "roadway",
        "roadways",
        "highway",
        "highways",
        "avenue",
        "avenues",
        "bypass",
        "bypasses",
        "railway",
    ),
    "vegetation": ("wood", "plant", "bush", "shrub", "greenery", "farmland", "farmlands", "crops", "cropland"),
    "water": ("canal", "canals", "ponds", "swamp"),
    "bareland": ("barelands", "soil", "ground", "field", "fields", "space", "spaces"),
    "sports_field": ("pitch", "pitches", "venue", "venues"),
}

# Two-word objects of the caption parser -> fact object class; the first word decides
# ("parking lot", "swimming pool", "green land", "open space").
COMPOUNDS: dict[tuple[str, str], str] = {}
for _head in ("lot", "lots", "area", "areas", "space", "spaces", "garage", "garages", "place", "places"):
    COMPOUNDS[("parking", _head)] = "parking_lot"
for _head in ("pool", "pools"):
    COMPOUNDS[("swimming", _head)] = "water"
for _mod in ("basketball", "football", "baseball", "tennis", "sports", "soccer", "playing"):
    for _head in ("court", "courts", "field", "fields", "ground", "grounds", "pitch", "track"):
        COMPOUNDS[(_mod, _head)] = "sports_field"
for _mod in ("green", "grass"):
    for _head in ("land", "lands", "space", "spaces", "area", "areas", "field", "fields"):
        COMPOUNDS[(_mod, _head)] = "vegetation"
for _mod in ("residential", "building", "housing"):
    for _head in ("area", "areas", "district", "estate", "estates", "block", "blocks", "complex", "quarter"):
        COMPOUNDS[(_mod, _head)] = "building"
for _mod in ("bare", "open", "vacant", "empty"):
    for _head in ("land", "lands", "field", "fields", "space", "spaces", "area", "areas", "ground", "lot", "lots"):
        COMPOUNDS[(_mod, _head)] = "bareland"
for _mod in ("storage", "oil", "water"):
    for _head in ("tank", "tanks"):
        COMPOUNDS[(_mod, _head)] = "other"
