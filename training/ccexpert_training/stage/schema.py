"""The typed stage configuration: one frozen dataclass per YAML section, built from the merged mapping by one
validator (:func:`build_stage_config`).

Every error names where the offending value came from and its dotted key, e.g.
``configs/stage2.yaml: optim.learning_rate: expected a positive number, got 'abc'`` (the source is a config file, or
``overrides`` for ``--set`` / the overrides dict, or ``defaults``). The defaults of every key are the dataclass
defaults (:data:`DEFAULTS` is derived from them), so the YAML keys, the defaults and the attributes cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .parts import PARTS


class _Invalid(Exception):
    """A checker's complaint: what was expected (the validator adds the source, key and value)."""


Checker = Callable[[Any], Any]


def _meta(check: Checker) -> dict:
    return {"check": check}


# ---------------------------------------------------------------------------------------------------- checkers


def _number(low: float | None = None, strict: bool = False) -> Checker:
    """int/float (not bool); a string that parses as a float too (YAML 1.1 reads "1e-5" without a dot as one)."""
    what = (
        "a number"
        if low is None
        else ("a positive number" if strict and low == 0 else f"a number {'>' if strict else '>='} {low:g}")
    )

    def check(value):
        if isinstance(value, bool):
            raise _Invalid(what)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _Invalid(what) from None
        if low is not None and (number < low or (strict and number == low)):
            raise _Invalid(what)
        return number

    return check


def _integer(low: int = 1) -> Checker:
    what = "a positive integer" if low == 1 else f"an integer >= {low}"

    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise _Invalid(what)
        return value

    return check


def _boolean(value):
    if not isinstance(value, bool):
        raise _Invalid("true or false")
    return value


def _text(value):
    if not isinstance(value, str) or not value:
        raise _Invalid("a non-empty string")
    return value


def _choice(*allowed: str) -> Checker:
    def check(value):
        if value not in allowed:
            raise _Invalid(" or ".join(", ".join(allowed).rsplit(", ", 1)))
        return value

    return check


def _optional(inner: Checker) -> Checker:
    def check(value):
        if value is None:
            return None
        try:
            return inner(value)
        except _Invalid as exc:
            raise _Invalid(f"{exc} or null") from None

    return check


def _records_spec(value):
    """data.train: a mixture YAML / records JSONL path, or an inline mixture mapping (kept as a plain dict)."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise _Invalid("a path or an inline mixture mapping")


def _lr_scale(value):
    if not isinstance(value, Mapping):
        raise _Invalid("a mapping of part -> positive number")
    return dict(value)  # parts and numbers are checked with their own keys in _cross_checks


def _trainable(value):
    if not isinstance(value, (list, tuple)) or not value or any(p not in PARTS for p in value):
        raise _Invalid(f"a non-empty list of parts from {sorted(PARTS)}")
    return tuple(value)


def _eval_steps(value):
    if value == "epoch" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise _Invalid("a positive integer or 'epoch'")


def _report_to(value):
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _Invalid("a list of logger names (e.g. [tensorboard]) or a string")


def _resume(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    raise _Invalid("true, a checkpoint path or null")


# ---------------------------------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class ModelSection:
    """``model``: where the weights come from and which optional modules the model has."""

    init_from: str | None = field(default=None, metadata=_meta(_optional(_text)))  # checkpoint / hub id / stage
    preset: str | None = field(default=None, metadata=_meta(_optional(_text)))  # random weights ('tiny' only)
    use_dim: bool = field(default=True, metadata=_meta(_boolean))
    diff_branch: bool | None = field(default=None, metadata=_meta(_optional(_boolean)))  # None keeps the checkpoint's
    change_mask_loss_weight: float | None = field(default=None, metadata=_meta(_optional(_number(0))))
    seed: int = field(default=0, metadata=_meta(_integer(0)))


@dataclass(frozen=True)
class DataSection:
    """``data``: the training mixture and the validation (selection) and test (scored once) records."""

    train: str | dict | None = field(default=None, metadata=_meta(_optional(_records_spec)))
    caption_mode: str = field(default="flatten", metadata=_meta(_choice("flatten", "random_choice")))
    val: str | None = field(default=None, metadata=_meta(_optional(_text)))  # required (checked in _cross_checks)
    test: str | None = field(default=None, metadata=_meta(_optional(_text)))
    max_val_pairs: int | None = field(default=None, metadata=_meta(_optional(_integer())))
    preflight: bool = field(default=True, metadata=_meta(_boolean))
    cache_images: bool = field(default=False, metadata=_meta(_boolean))


@dataclass(frozen=True)
class OptimSection:
    """``optim``: AdamW, per-part learning-rate scales, the schedule."""

    learning_rate: float = field(default=1.0e-5, metadata=_meta(_number(0, strict=True)))
    lr_scale: dict[str, float] = field(default_factory=dict, metadata=_meta(_lr_scale))
    weight_decay: float = field(default=0.0, metadata=_meta(_number(0)))
    max_grad_norm: float = field(default=1.0, metadata=_meta(_number(0)))
    warmup_ratio: float = field(default=0.03, metadata=_meta(_number(0)))
    lr_scheduler_type: str = field(default="cosine", metadata=_meta(_text))
    adam_beta1: float = field(default=0.9, metadata=_meta(_number(0)))
    adam_beta2: float = field(default=0.999, metadata=_meta(_number(0)))
    adam_epsilon: float = field(default=1.0e-8, metadata=_meta(_number(0, strict=True)))


@dataclass(frozen=True)
class BatchSection:
    """``batch``: accumulation = global / (per-device x world size), so the global batch holds on any GPU count."""

    global_batch_size: int = field(default=64, metadata=_meta(_integer()))
    per_device_train_batch_size: int = field(default=4, metadata=_meta(_integer()))
    eval_batch_size: int = field(default=8, metadata=_meta(_integer()))


@dataclass(frozen=True)
class DnpoSection:
    """``dnpo`` (stage 4, RSICCLLM DNPO, ccexpert_training.dnpo): set ``preferences`` to train on chosen/rejected
    caption pairs instead of a caption mixture."""

    preferences: str | None = field(default=None, metadata=_meta(_optional(_text)))
    reference: str | None = field(default=None, metadata=_meta(_optional(_text)))
    beta: float = field(default=0.1, metadata=_meta(_number(0, strict=True)))
    kl_lambda: float = field(default=0.1, metadata=_meta(_number(0)))


@dataclass(frozen=True)
class TrainingSection:
    """``training``: the HF Trainer's loop, checkpointing, DeepSpeed and logging settings."""

    output_dir: str | None = field(default=None, metadata=_meta(_optional(_text)))  # required
    num_train_epochs: float = field(default=1, metadata=_meta(_number(0, strict=True)))
    max_steps: int = field(default=-1, metadata=_meta(_integer(-1)))
    eval_steps: int | str = field(default=1000, metadata=_meta(_eval_steps))
    save_total_limit: int | None = field(default=2, metadata=_meta(_optional(_integer())))
    logging_steps: int = field(default=10, metadata=_meta(_integer()))
    gradient_checkpointing: bool = field(default=True, metadata=_meta(_boolean))
    deepspeed: str | None = field(default="ds_zero2.json", metadata=_meta(_optional(_text)))
    precision: str = field(default="auto", metadata=_meta(_choice("auto", "bf16", "fp32")))
    seed: int = field(default=42, metadata=_meta(_integer(0)))
    dataloader_num_workers: int = field(default=4, metadata=_meta(_integer(0)))
    report_to: tuple[str, ...] | str = field(default=("tensorboard",), metadata=_meta(_report_to))
    eval_max_new_tokens: int = field(default=64, metadata=_meta(_integer()))
    resume_from_checkpoint: bool | str | None = field(default=None, metadata=_meta(_resume))
    torch_compile: bool = field(default=False, metadata=_meta(_boolean))


SECTIONS: dict[str, type] = {
    "model": ModelSection,
    "data": DataSection,
    "optim": OptimSection,
    "batch": BatchSection,
    "dnpo": DnpoSection,
    "training": TrainingSection,
}


@dataclass(frozen=True)
class StageConfig:
    """One validated stage config (``load_stage_config``); ``to_dict()`` gives the mapping it was built from."""

    stage: str
    model: ModelSection
    trainable: tuple[str, ...]
    data: DataSection
    optim: OptimSection
    batch: BatchSection
    dnpo: DnpoSection
    training: TrainingSection

    @property
    def output_dir(self) -> str:
        """``training.output_dir`` (required, so never None here)."""
        assert self.training.output_dir is not None  # the validator requires it
        return self.training.output_dir

    @property
    def uses_dnpo(self) -> bool:
        return self.dnpo.preferences is not None

    def to_dict(self) -> dict:
        """The config as plain JSON-able data (lists for tuples); loading it again gives an equal config."""
        return _plain(dataclasses.asdict(self))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _section_defaults(cls: type) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out[f.name] = list(default) if isinstance(default, tuple) else default
    return out


# The YAML-level defaults every config is merged over (derived from the dataclasses above).
DEFAULTS: dict = {
    "stage": "stage",
    "model": _section_defaults(ModelSection),
    "trainable": ["dim", "projector"],
    "data": _section_defaults(DataSection),
    "optim": _section_defaults(OptimSection),
    "batch": _section_defaults(BatchSection),
    "dnpo": _section_defaults(DnpoSection),
    "training": _section_defaults(TrainingSection),
}


# --------------------------------------------------------------------------------------------------- validator


def build_stage_config(config: Mapping, source_of: Callable[[str], str] = lambda key: "config") -> StageConfig:
    """Validate a merged stage mapping (defaults <- files <- overrides) and build the typed config.

    ``source_of(dotted_key)`` names where a key's value came from (a file, ``overrides``); every error message is
    ``<source>: <key>: <problem>``.
    """

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{source_of(key)}: {key}: {problem}")

    def checked(key: str, value, check: Checker):
        try:
            return check(value)
        except _Invalid as exc:
            raise fail(key, f"expected {exc}, got {value!r}") from None

    for key in config:
        if key not in DEFAULTS:
            raise fail(str(key), f"unknown top-level key; allowed {sorted(DEFAULTS)}")
    sections = {}
    for name, cls in SECTIONS.items():
        raw = config.get(name, DEFAULTS[name])
        if not isinstance(raw, Mapping):
            raise fail(name, f"expected a mapping, got {raw!r}")
        allowed = {f.name: f for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in allowed:
                raise fail(f"{name}.{key}", f"unknown key; allowed in '{name}': {sorted(allowed)}")
        values = {}
        for key, spec in allowed.items():
            value = raw[key] if key in raw else DEFAULTS[name][key]
            values[key] = checked(f"{name}.{key}", value, spec.metadata["check"])
        sections[name] = cls(**values)
    stage = checked("stage", config.get("stage", DEFAULTS["stage"]), _text)
    trainable = checked("trainable", config.get("trainable", DEFAULTS["trainable"]), _trainable)
    built = StageConfig(stage=stage, trainable=trainable, **sections)
    _cross_checks(built, fail)
    return built


def _cross_checks(cfg: StageConfig, fail: Callable[[str, str], ConfigError]) -> None:
    """Rules that concern more than one key, or a key's contents."""
    for part, scale in cfg.optim.lr_scale.items():
        key = f"optim.lr_scale.{part}"
        if part not in PARTS:
            raise fail(key, f"unknown part {part!r}; choose from {sorted(PARTS)}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0:
            raise fail(key, f"expected a positive number, got {scale!r}")
    if (cfg.model.init_from is None) == (cfg.model.preset is None):
        raise fail(
            "model.init_from",
            "set exactly one of model.init_from (checkpoint / hub id / previous stage) or model.preset",
        )
    if cfg.data.train is None and cfg.dnpo.preferences is None:
        raise fail(
            "data.train",
            "required (a mixture YAML, a records JSONL or an inline mixture; or dnpo.preferences for a DNPO stage)",
        )
    if cfg.data.val is None:
        raise fail("data.val", "required: checkpoints are selected on the validation split (never the test split)")
    if cfg.training.output_dir is None:
        raise fail("training.output_dir", "required")
