"""Where the default model lives: `$CCEXPERT_MODEL`, else the shipped demo model, package data of `ccexpert`
(`backend/ccexpert/demo_model` in a checkout, `site-packages/ccexpert/demo_model` once the wheel is installed)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEMO_MODEL_DIR = PACKAGE_DIR / "demo_model"


def default_model_dir() -> Path:
    """The model used when none is given. Not checked here: loading it says clearly when nothing is there."""
    env = os.environ.get("CCEXPERT_MODEL", "").strip()
    return Path(env).expanduser() if env else DEMO_MODEL_DIR


__all__ = ["DEMO_MODEL_DIR", "PACKAGE_DIR", "default_model_dir"]
