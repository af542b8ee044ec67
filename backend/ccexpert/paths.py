"""Where the default model lives: `$CCEXPERT_MODEL`, else the shipped demo model `<repo>/resources/demo_model`."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL_DIR = REPO_ROOT / "resources" / "demo_model"


def default_model_dir() -> Path:
    """The model used when none is given. Not checked here: loading it says clearly when nothing is there."""
    env = os.environ.get("CCEXPERT_MODEL", "").strip()
    return Path(env).expanduser() if env else DEMO_MODEL_DIR


__all__ = ["DEMO_MODEL_DIR", "REPO_ROOT", "default_model_dir"]
