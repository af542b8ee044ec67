"""Reading a JSON or YAML file the user named, with one error wording for every caller (configs, DeepSpeed configs,
mixtures, captions files): ``<file>: cannot read (...)`` or ``<file>: invalid JSON|YAML: <parser message>``, raised as
the caller's own error type so each command keeps reporting its errors its way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def read_json_or_yaml(path: Path, error: type[Exception], *, fmt: str | None = None, label: str | None = None) -> Any:
    """The parsed content of ``path``: JSON when ``fmt`` is "json" (default: a ``.json`` suffix), else YAML (an empty
    YAML file reads as ``{}``). ``label`` names the file in messages (default: the path). Raises ``error``."""
    fmt = fmt or ("json" if path.suffix == ".json" else "yaml")
    name = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{name}: cannot read ({exc})") from exc
    try:
        return json.loads(text) if fmt == "json" else (yaml.safe_load(text) or {})
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise error(f"{name}: invalid {fmt.upper()}: {exc}") from exc
