"""`model_card.json`: what a checkpoint says about itself beyond its config (name, version, demo, chip size).

Its own module because both the runtime loader (`checkpoints`) and the model builders (`presets`, the demo
training) read or write it, and neither should import the other for it.
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL_CARD = "model_card.json"


def read_model_card(source: str | Path) -> dict:
    """`model_card.json` of a checkpoint folder ({} when absent; for a hub id, pass `resolve_checkpoint`'s folder)."""
    card = Path(str(source)).expanduser() / MODEL_CARD
    return json.loads(card.read_text()) if card.is_file() else {}


def write_model_card(
    directory: str | Path,
    model_name: str,
    model_version: str,
    demo: bool = False,
    chip_size: int | None = None,
    gsd_m: float | None = None,
) -> None:
    """``chip_size``: the chip the model was trained to read when it differs from its input size (the demo model
    reads 384-px chips at 128 px); clients cut chips of this size (``/v1/info``). ``gsd_m``: the ground sample
    distance of the training imagery in metres per pixel (LEVIR-CC: 0.5); clients warn when a raster is far
    from it."""
    card: dict = {"model_name": model_name, "model_version": model_version, "demo": demo}
    if chip_size is not None:
        card["chip_size"] = int(chip_size)
    if gsd_m is not None:
        if not float(gsd_m) > 0:
            raise ValueError(f"gsd_m must be a positive number of metres per pixel, got {gsd_m!r}")
        card["gsd_m"] = float(gsd_m)
    (Path(directory) / MODEL_CARD).write_text(json.dumps(card, indent=2) + "\n")


__all__ = ["MODEL_CARD", "read_model_card", "write_model_card"]
