"""Ground sample distance check: a model captions well only near the pixel size it was trained on (LEVIR-CC:
0.5 m). Shared by the plugin and ``ccexpert describe``; the model card's ``gsd_m`` reaches clients in
``/v1/info``."""

from __future__ import annotations

TOLERANCE = 2.0  # warn beyond this factor either way


def seen_gsd(pixel_size_m: float, chip_size: int, model_input: int) -> float:
    """Metres per pixel the model sees: a chip of ``chip_size`` raster pixels resized to ``model_input``."""
    return abs(pixel_size_m) * chip_size / max(1, model_input)


def matching_chip_size(
    pixel_size_m: float | None, chip_size: int, model_input: int, model_gsd_m: float | None
) -> int | None:
    """The chip size (raster pixels, at least 16) that gives the model about its training pixel size, when the
    current one is off by more than TOLERANCE; None when it is close enough or cannot be told (no CRS in metres,
    no ``gsd_m`` on the model card). What the dialog offers before a run."""
    try:
        model_gsd = float(model_gsd_m or 0)
        pixel = abs(float(pixel_size_m or 0))
    except (TypeError, ValueError):
        return None
    if model_gsd <= 0 or pixel <= 0:
        return None
    seen = seen_gsd(pixel, chip_size, model_input)
    if model_gsd / TOLERANCE <= seen <= model_gsd * TOLERANCE:
        return None
    return max(16, round(chip_size * model_gsd / seen))


def gsd_warning(pixel_size_m: float | None, chip_size: int, model_input: int, model_gsd_m: float | None) -> str | None:
    """The warning to show, or None when the pixel size is close enough (or unknown: no CRS in metres, no
    ``gsd_m`` on the model card)."""
    matching = matching_chip_size(pixel_size_m, chip_size, model_input, model_gsd_m)
    if matching is None:
        return None
    model_gsd, pixel = float(model_gsd_m or 0), abs(float(pixel_size_m or 0))
    seen = seen_gsd(pixel, chip_size, model_input)
    return (
        f"The model was trained on about {model_gsd:g} m per pixel; these chips give it {seen:.2g} m per pixel "
        f"({pixel:.2g} m pixels, chips of {chip_size} px). Captions may miss or invent changes; a chip size of "
        f"about {matching} px matches the model."
    )
