"""The stage-training API in one place (a facade over :mod:`ccexpert_training.stage`, which documents it)::

    from ccexpert_training.train import launch_stage, load_stage_config, run_stage

Importing this module does not import torch; the trainer loads when a stage runs.
"""

from __future__ import annotations

from .stage.config import CONFIG_DIR, load_deepspeed_config, load_stage_config, parse_overrides
from .stage.errors import ConfigError
from .stage.evaluate import METRIC_FOR_BEST, broadcast_metrics, evaluate_checkpoint, generate_predictions
from .stage.launch import launch_stage
from .stage.model import load_model_and_processor, resolve_init
from .stage.parts import PARTS, UNUSED_PREFIXES, apply_trainable, param_groups, part_of
from .stage.run import run_stage
from .stage.schema import DEFAULTS, StageConfig, build_stage_config

__all__ = [
    "CONFIG_DIR",
    "DEFAULTS",
    "METRIC_FOR_BEST",
    "PARTS",
    "UNUSED_PREFIXES",
    "ConfigError",
    "StageConfig",
    "apply_trainable",
    "broadcast_metrics",
    "build_stage_config",
    "evaluate_checkpoint",
    "generate_predictions",
    "launch_stage",
    "load_deepspeed_config",
    "load_model_and_processor",
    "load_stage_config",
    "parse_overrides",
    "param_groups",
    "part_of",
    "resolve_init",
    "run_stage",
]
