"""Loading a stage config: defaults <- config file (with its ``base`` chain) <- overrides, then one validator
(:func:`ccexpert_training.stage.schema.build_stage_config`) builds the typed :class:`StageConfig`.

``${VAR}`` in strings expands environment variables (an unset one is an error); relative paths are relative to the
file that sets them (to the working directory for overrides). While merging, the loader remembers which file (or
``overrides``) set each key, so a validation error names the file and the key.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..structured_files import read_json_or_yaml
from .errors import ConfigError
from .schema import DEFAULTS, StageConfig, build_stage_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
OVERRIDES = "overrides"  # the source name of values given as overrides (``--set KEY=VALUE``)
_PATH_KEYS = (
    "model.init_from",
    "data.train",
    "data.val",
    "data.test",
    "training.output_dir",
    "training.deepspeed",
    "dnpo.preferences",
    "dnpo.reference",
)


class _Sources:
    """dotted key -> the file (or ``overrides``) that set it last; the merge order is the recording order."""

    def __init__(self) -> None:
        self.by_key: dict[str, str] = {}

    def note(self, mapping: Mapping, label: str) -> None:
        for key, value in mapping.items():
            self.by_key[str(key)] = label
            if isinstance(value, Mapping):
                for sub in value:
                    self.by_key[f"{key}.{sub}"] = label

    def __call__(self, dotted: str) -> str:
        key = dotted
        while key:
            if key in self.by_key:
                return self.by_key[key]
            key = key.rpartition(".")[0]
        return "defaults"


def _label(path: Path) -> str:
    """How an error names a config file: ``configs/stage2.yaml`` for a shipped one, else relative to the cwd."""
    for root in (CONFIG_DIR.parent, Path.cwd()):
        try:
            return str(path.relative_to(root))
        except ValueError:
            continue
    return str(path)


def _deep_merge(base: dict, update: Mapping) -> dict:
    """``update`` over ``base``, mappings merged key by key (except ``lr_scale``, which replaces what it overrides)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict) and key != "lr_scale":
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _expand_overrides(overrides: Mapping | None) -> dict:
    """``{"a.b": 1, "c": {"d": 2}}`` -> nested dict."""
    nested: dict = {}
    for key, value in (overrides or {}).items():
        parts = str(key).split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if isinstance(value, Mapping) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = _deep_merge(node[parts[-1]], value)
        else:
            node[parts[-1]] = value
    return nested


def _get(config: Mapping, dotted: str):
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _set(config: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _expand_vars(value, key: str, sources: _Sources):
    if isinstance(value, str):
        for name in re.findall(r"\$\{(\w+)\}", value):
            if name not in os.environ:
                raise ConfigError(f"{sources(key)}: {key}: environment variable ${{{name}}} is not set")
        return os.path.expandvars(value)
    if isinstance(value, dict):
        return {k: _expand_vars(v, f"{key}.{k}" if key else str(k), sources) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_vars(v, key, sources) for v in value]
    return value


def _resolve_paths(config: dict, base_dir: Path) -> None:
    """Relative paths of ``config`` (one file's content) become absolute against ``base_dir``."""
    for key in _PATH_KEYS:
        value = _get(config, key)
        if isinstance(value, str) and value.startswith("$"):
            continue  # ${VAR}/... is expanded after merging (an overridden unset variable is no error)
        if isinstance(value, str) and value and not _looks_like_hub_id(key, value):
            path = Path(value).expanduser()
            if key == "training.deepspeed" and path.name == value and not (base_dir / path).exists():
                path = CONFIG_DIR / value  # a shipped DeepSpeed config by name: "ds_zero3.json"
            _set(config, key, str(path if path.is_absolute() else (base_dir / path).resolve()))
        elif isinstance(value, dict) and key == "data.train":
            value.setdefault("_base_dir", str(base_dir))


def _looks_like_hub_id(key: str, value: str) -> bool:
    """``org/name`` in model.init_from is a hub id unless it exists locally or looks like a path."""
    if key != "model.init_from":
        return False
    return value.count("/") == 1 and not value.startswith((".", "/", "~", "$")) and not Path(value).exists()


def _load_file(path: Path, sources: _Sources, seen: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{_label(path)}: circular 'base' chain")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    raw = read_json_or_yaml(path, ConfigError, label=_label(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{_label(path)}: expected a mapping")
    base = raw.pop("base", None)
    _resolve_paths(raw, path.parent)
    merged = raw
    if base is not None:
        base_path = Path(base)
        if not base_path.is_absolute():
            base_path = path.parent / base_path
        merged = _deep_merge(_load_file(base_path, sources, (*seen, path)), raw)
    sources.note(raw, _label(path))  # after the base chain: this file's keys win
    return merged


def load_stage_config(config: str | Path | Mapping, overrides: Mapping | None = None) -> StageConfig:
    """Defaults <- config file (with its ``base`` chain) <- overrides, validated into a :class:`StageConfig`.

    ``config`` is a YAML/JSON path, a shipped config's name (``stage1.yaml``) or a mapping; ``overrides`` a dict
    with dotted keys (``{"optim.learning_rate": 1e-3}``) or nested dicts.
    """
    sources = _Sources()
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.exists() and not path.is_absolute() and (CONFIG_DIR / path).exists():
            path = CONFIG_DIR / path  # a shipped config by name, e.g. "stage1.yaml"
        loaded = _load_file(path, sources)
    else:
        loaded = copy.deepcopy(dict(config))
        base = loaded.pop("base", None)
        _resolve_paths(loaded, Path.cwd())
        if base is not None:
            loaded = _deep_merge(_load_file(Path(base), sources), loaded)
        sources.note({k: v for k, v in dict(config).items() if k != "base"}, "config")
    extra = _expand_overrides(overrides)
    _resolve_paths(extra, Path.cwd())
    sources.note(extra, OVERRIDES)
    merged = _expand_vars(_deep_merge(_deep_merge(DEFAULTS, loaded), extra), "", sources)
    _resolve_paths(merged, Path.cwd())
    stage = build_stage_config(merged, sources)
    if stage.training.deepspeed is not None:
        load_deepspeed_config(stage.training.deepspeed)
    return stage


def load_deepspeed_config(path: str | Path) -> dict:
    """Read a DeepSpeed JSON and refuse an ``optimizer``/``scheduler`` block (they would silently replace our
    per-group AdamW and cosine schedule with a single-lr DeepSpeed optimizer)."""
    path = Path(path)
    if not path.is_file() and (CONFIG_DIR / path.name).is_file() and not path.is_absolute():
        path = CONFIG_DIR / path.name
    if not path.is_file():
        raise ConfigError(f"training.deepspeed: file not found: {path}")
    ds = read_json_or_yaml(path, ConfigError, fmt="json")
    for block in ("optimizer", "scheduler"):
        if block in ds:
            raise ConfigError(
                f"{path}: remove the '{block}' block. With it DeepSpeed builds its own {block} with a single learning "
                "rate for every parameter, silently dropping the per-group learning rates (the reference's ViT lr bug)"
            )
    return ds


def parse_overrides(items: Sequence[str]) -> dict:
    """``["optim.learning_rate=1e-3", "trainable=[dim]"]`` -> dict (values parsed as YAML scalars/lists)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
