"""A backend's ``/v1/info`` in words an analyst reads (settings dialog, run log): which model, whether it is the
synthetic demo or a general VLM rather than a change expert, the chip size and the device. Qt-free."""

from __future__ import annotations

from collections.abc import Mapping

DEMO_WARNING = "the demo model (synthetic domain only): its captions say nothing about real imagery"
GENERAL_NOTE = "a general vision-language model prompted for changes, not a change-captioning expert"


def backend_summary(info: Mapping, url: str) -> list[str]:
    """Lines describing the backend at `url` from its /v1/info (unknown fields are left out, never invented)."""
    name = str(info.get("model_name") or "unknown model")
    version = str(info.get("model_version") or "")
    family = str(info.get("family") or "ccexpert")
    lines = [
        f"Connected to {url}.",
        f"Model: {name}"
        + (f" ({version})" if version and version != "unknown" else "")
        + ("" if family == "ccexpert" else f", {family}"),
    ]
    if info.get("demo"):
        lines.append(f"Warning: {DEMO_WARNING}.")
    elif info.get("change_expert") is False:
        lines.append(f"Note: {GENERAL_NOTE}.")
    if info.get("chip_size"):
        batch = f", up to {info['max_batch']} chip pairs per request" if info.get("max_batch") else ""
        lines.append(f"Chips: {int(info['chip_size'])} x {int(info['chip_size'])} px{batch}.")
    if info.get("device"):
        dtype = f" ({info['dtype']})" if info.get("dtype") else ""
        lines.append(f"Runs on: {info['device']}{dtype}.")
    return lines


__all__ = ["DEMO_WARNING", "GENERAL_NOTE", "backend_summary"]
