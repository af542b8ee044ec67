"""Three-stage CCExpert training with the HF Trainer and DeepSpeed (ccexpert_model.md §4), without the reference's
recipe bugs.

Python API (used by ``ccexpert train`` and by the demo-model builder)::

    from ccexpert_training.train import launch_stage, run_stage

    # in this process (single process, or inside a torchrun/deepspeed launch):
    best_dir = run_stage("stage1.yaml", {"training.output_dir": "work/s1", "model.init_from": "path/or/hub-id"})
    # in N fresh processes via torchrun (DeepSpeed on CPU uses gloo); returns the same best_dir:
    best_dir = launch_stage("stage2.yaml", {"model.init_from": "work/s1", "training.output_dir": "work/s2"}, nproc=2)

``config`` is a YAML path or a dict; ``overrides`` is a dict with dotted keys (``{"optim.learning_rate": 1e-3}``) or
nested dicts. ``run_stage`` returns ``<output_dir>/best``: a complete checkpoint folder (config.json,
model.safetensors, tokenizer, generation_config.json) holding the weights that scored the highest S*m on the
VALIDATION split; ``<output_dir>/best_checkpoint.json`` records which step that was. A stage whose
``model.init_from`` is another stage's output_dir starts from that stage's best checkpoint (never its last one). When
``data.test`` is set, the best checkpoint is evaluated once on it at the end (``<output_dir>/test_metrics.json``,
``test_predictions.jsonl``); test data never influences selection.

What differs from the reference, on purpose:
- per-group learning rates really apply under DeepSpeed: we build the AdamW param groups ourselves (vision tower at
  ``optim.lr_scale.vision_tower`` x base lr) and a DeepSpeed config with an ``optimizer`` or ``scheduler`` block is
  refused, because DeepSpeed would then build one group at the base lr (LLaVA-NeXT #492);
- in-training evaluation and best-checkpoint selection use the validation split; the test split is scored once;
- stages chain from the best checkpoint; a bad record fails loudly (never a substituted sample).

Config layout (see ``configs/stage1.yaml``): ``base`` (a config to inherit from), ``stage``, ``model`` (``init_from``
or ``preset``, ``use_dim``), ``trainable`` (parts: vision_tower, dim, diff_branch, projector, language_model),
``data`` (``train`` mixture, ``caption_mode``, ``val``, ``test``), ``optim``, ``batch`` (``global_batch_size`` and
``per_device_train_batch_size``; accumulation = global / (per-device x world size), so the global batch stays at the
paper's value on any GPU count), ``training``. ``${VAR}`` in strings expands environment variables (an unset one is an
error); relative paths are relative to the file that sets them (to the working directory for overrides).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"

# Parameter-name prefixes of each trainable part (CCExpertForConditionalGeneration's module tree).
PARTS: dict[str, tuple[str, ...]] = {
    "vision_tower": ("model.vision_tower.",),
    "dim": ("model.dim.",),
    "diff_branch": ("model.diff_branch.",),
    "projector": ("model.multi_modal_projector.",),
    "language_model": ("model.language_model.", "lm_head."),
    # the auxiliary change-mask loss heads (CCExpertConfig.change_mask_loss_weight); trained whenever the stage
    # feeds change masks (run_stage adds the part), never listed in a config
    "change_mask_head": ("change_mask_head.", "change_mask_token_head."),
}
# Parameters no forward pass uses: OV's image_newline (no anyres here) and SigLIP's post-layernorm (the projector
# reads a hidden state, not last_hidden_state). They stay frozen in every stage so no optimizer carries dead state.
UNUSED_PREFIXES = (
    "model.image_newline",
    "model.vision_tower.vision_model.post_layernorm.",  # SiglipVisionModel layout
    "model.vision_tower.post_layernorm.",  # SiglipVisionTransformer layout
)
METRIC_FOR_BEST = "Sm"  # S*m; logged as eval_Sm ('*' is not a valid TensorBoard tag character)

DEFAULTS: dict = {
    "stage": "stage",
    "model": {"init_from": None, "preset": None, "use_dim": True, "diff_branch": None, "change_mask_loss_weight": None,
              "seed": 0},
    "trainable": ["dim", "projector"],
    "data": {
        "train": None,
        "caption_mode": "flatten",
        "val": None,
        "test": None,
        "max_val_pairs": None,
        "preflight": True,
        "cache_images": False,
    },
    "optim": {
        "learning_rate": 1.0e-5,
        "lr_scale": {},
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "warmup_ratio": 0.03,
        "lr_scheduler_type": "cosine",
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1.0e-8,
    },
    "batch": {"global_batch_size": 64, "per_device_train_batch_size": 4, "eval_batch_size": 8},
    # Stage 4 (RSICCLLM DNPO, ccexpert_training.dnpo): set ``preferences`` to train on chosen/rejected pairs.
    "dnpo": {"preferences": None, "reference": None, "beta": 0.1, "kl_lambda": 0.1},
    "training": {
        "output_dir": None,
        "num_train_epochs": 1,
        "max_steps": -1,
        "eval_steps": 1000,
        "save_total_limit": 2,
        "logging_steps": 10,
        "gradient_checkpointing": True,
        "deepspeed": "ds_zero2.json",
        "precision": "auto",
        "seed": 42,
        "dataloader_num_workers": 4,
        "report_to": ["tensorboard"],
        "eval_max_new_tokens": 64,
        "resume_from_checkpoint": None,
        "torch_compile": False,
    },
}
_PATH_KEYS = ("model.init_from", "data.train", "data.val", "data.test", "training.output_dir", "training.deepspeed",
              "dnpo.preferences", "dnpo.reference")


class ConfigError(ValueError):
    """A stage config that cannot be used; the message names the key."""


# ---------------------------------------------------------------------------------------------------------------
# configuration


def _deep_merge(base: dict, update: Mapping) -> dict:
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
    node = config
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


def _expand_vars(value, key: str):
    if isinstance(value, str):
        for name in re.findall(r"\$\{(\w+)\}", value):
            if name not in os.environ:
                raise ConfigError(f"{key}: environment variable ${{{name}}} is not set")
        return os.path.expandvars(value)
    if isinstance(value, dict):
        return {k: _expand_vars(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_vars(v, key) for v in value]
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
    return (
        value.count("/") == 1
        and not value.startswith((".", "/", "~", "$"))
        and not Path(value).exists()
    )


def _load_file(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular 'base' chain")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else (yaml.safe_load(text) or {})
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    base = raw.pop("base", None)
    _resolve_paths(raw, path.parent)
    if base is None:
        return raw
    base_path = Path(base)
    if not base_path.is_absolute():
        base_path = path.parent / base_path
    return _deep_merge(_load_file(base_path, (*seen, path)), raw)


def load_stage_config(config: str | Path | Mapping, overrides: Mapping | None = None) -> dict:
    """Defaults <- config file (with its ``base`` chain) <- overrides, validated. Returns a plain dict."""
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.exists() and not path.is_absolute() and (CONFIG_DIR / path).exists():
            path = CONFIG_DIR / path  # a shipped config by name, e.g. "stage1.yaml"
        loaded = _load_file(path)
    else:
        loaded = copy.deepcopy(dict(config))
        base = loaded.pop("base", None)
        _resolve_paths(loaded, Path.cwd())
        if base is not None:
            loaded = _deep_merge(_load_file(Path(base)), loaded)
    extra = _expand_overrides(overrides)
    _resolve_paths(extra, Path.cwd())
    merged = _expand_vars(_deep_merge(_deep_merge(DEFAULTS, loaded), extra), "config")
    _resolve_paths(merged, Path.cwd())
    _validate(merged)
    return merged


def _validate(config: dict) -> None:
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown top-level keys {unknown}; allowed {sorted(DEFAULTS)}")
    for section in ("model", "data", "optim", "batch", "dnpo", "training"):
        if not isinstance(config[section], dict):
            raise ConfigError(f"'{section}' must be a mapping")
        bad = sorted(set(config[section]) - set(DEFAULTS[section]) - {"_base_dir"})
        if bad:
            raise ConfigError(f"unknown keys in '{section}': {bad}; allowed {sorted(DEFAULTS[section])}")
    for key in ("learning_rate", "weight_decay", "max_grad_norm", "warmup_ratio", "adam_beta1", "adam_beta2",
                "adam_epsilon"):
        try:
            config["optim"][key] = float(config["optim"][key])  # YAML 1.1 reads "1e-5" (no dot) as a string
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"optim.{key} must be a number, got {config['optim'][key]!r}") from exc
    trainable = config["trainable"]
    if not isinstance(trainable, list) or not trainable or any(p not in PARTS for p in trainable):
        raise ConfigError(f"'trainable' must be a non-empty list of parts from {sorted(PARTS)}, got {trainable!r}")
    for part, scale in config["optim"]["lr_scale"].items():
        if part not in PARTS:
            raise ConfigError(f"optim.lr_scale: unknown part {part!r}; choose from {sorted(PARTS)}")
        if not isinstance(scale, (int, float)) or scale <= 0:
            raise ConfigError(f"optim.lr_scale.{part} must be a positive number, got {scale!r}")
    model = config["model"]
    if (model["init_from"] is None) == (model["preset"] is None):
        raise ConfigError("set exactly one of model.init_from (checkpoint / hub id / previous stage) or model.preset")
    weight = model["change_mask_loss_weight"]
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0):
        raise ConfigError(f"model.change_mask_loss_weight must be a number >= 0 (or null), got {weight!r}")
    if config["data"]["train"] is None and config["dnpo"]["preferences"] is None:
        raise ConfigError("data.train is required (a mixture YAML, a records JSONL or an inline mixture)")
    for key, low in (("beta", "> 0"), ("kl_lambda", ">= 0")):
        value = config["dnpo"][key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (low == "> 0" and value == 0):
            raise ConfigError(f"dnpo.{key} must be a number {low}, got {value!r}")
    if config["data"]["val"] is None:
        raise ConfigError(
            "data.val is required: checkpoints are selected on the validation split (never the test split)"
        )
    if config["data"]["caption_mode"] not in ("flatten", "random_choice"):
        raise ConfigError(f"data.caption_mode must be flatten or random_choice, got {config['data']['caption_mode']!r}")
    for key in ("preflight", "cache_images"):
        if not isinstance(config["data"][key], bool):
            raise ConfigError(f"data.{key} must be true or false, got {config['data'][key]!r}")
    if config["training"]["output_dir"] is None:
        raise ConfigError("training.output_dir is required")
    batch = config["batch"]
    for key in ("global_batch_size", "per_device_train_batch_size", "eval_batch_size"):
        if not isinstance(batch[key], int) or batch[key] < 1:
            raise ConfigError(f"batch.{key} must be a positive integer, got {batch[key]!r}")
    if config["training"]["precision"] not in ("auto", "bf16", "fp32"):
        raise ConfigError("training.precision must be auto, bf16 or fp32")
    eval_steps = config["training"]["eval_steps"]
    if eval_steps != "epoch" and (not isinstance(eval_steps, int) or eval_steps < 1):
        raise ConfigError(f"training.eval_steps must be a positive integer or 'epoch', got {eval_steps!r}")
    if config["training"]["deepspeed"] is not None:
        load_deepspeed_config(config["training"]["deepspeed"])


def load_deepspeed_config(path: str | Path) -> dict:
    """Read a DeepSpeed JSON and refuse an ``optimizer``/``scheduler`` block (they would silently replace our
    per-group AdamW and cosine schedule with a single-lr DeepSpeed optimizer)."""
    path = Path(path)
    if not path.is_file() and (CONFIG_DIR / path.name).is_file() and not path.is_absolute():
        path = CONFIG_DIR / path.name
    if not path.is_file():
        raise ConfigError(f"training.deepspeed: file not found: {path}")
    try:
        ds = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from exc
    for block in ("optimizer", "scheduler"):
        if block in ds:
            raise ConfigError(
                f"{path}: remove the '{block}' block. With it DeepSpeed builds its own {block} with a single learning "
                "rate for every parameter, silently dropping the per-group learning rates (the reference's ViT lr bug)"
            )
    return ds


# ---------------------------------------------------------------------------------------------------------------
# model parts and optimizer groups


def part_of(name: str) -> str | None:
    """The trainable part a parameter belongs to; None for the never-used ones; error for an unknown name."""
    if name.startswith(UNUSED_PREFIXES):
        return None
    for part, prefixes in PARTS.items():
        if name.startswith(prefixes):
            return part
    raise ConfigError(f"parameter {name!r} belongs to no known part {sorted(PARTS)}; update train.PARTS")


def apply_trainable(model, parts: Sequence[str]) -> list[str]:
    """Set requires_grad for exactly ``parts``; returns the sorted trainable parameter names."""
    names = []
    for name, param in model.named_parameters():
        part = part_of(name)
        param.requires_grad_(part is not None and part in parts)
        if param.requires_grad:
            names.append(name)
    missing = [p for p in parts if not any(part_of(n) == p for n, _ in model.named_parameters())]
    if missing:
        raise ConfigError(f"trainable parts {missing} do not exist in this model (use_dim / diff_branch off?)")
    return sorted(names)


def param_groups(model, learning_rate: float, lr_scale: Mapping[str, float], weight_decay: float) -> list[dict]:
    """AdamW groups: one per distinct lr scale, each with its parts' trainable parameters and a ``name``."""
    groups: dict[float, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = part_of(name)
        scale = float(lr_scale.get(part, 1.0))
        group = groups.setdefault(
            scale, {"params": [], "param_names": [], "lr": learning_rate * scale, "weight_decay": weight_decay}
        )
        group["params"].append(param)
        group["param_names"].append(name)
    out = []
    for scale, group in sorted(groups.items(), key=lambda item: -item[0]):
        parts = sorted({part_of(n) for n in group["param_names"]})
        group["name"] = "+".join(parts) + (f"@x{scale:g}" if scale != 1.0 else "")
        group["lr_scale"] = scale
        out.append(group)
    return out


# ---------------------------------------------------------------------------------------------------------------
# distributed helpers


def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare_environment(use_deepspeed: bool) -> None:
    """Per-environment torch extension cache; a world of one when not launched by torchrun/deepspeed."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
    if use_deepspeed and "RANK" not in os.environ:
        os.environ.update(
            {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0", "LOCAL_RANK": "0",
             "WORLD_SIZE": "1"}
        )


# ---------------------------------------------------------------------------------------------------------------
# model loading


def resolve_init(init_from: str) -> str:
    """A previous stage's output_dir -> its BEST checkpoint (never the last one); otherwise the path / hub id."""
    path = Path(init_from)
    pointer = path / "best_checkpoint.json"
    if pointer.is_file():
        best = path / json.loads(pointer.read_text())["best_dir"]
        if not (best / "config.json").is_file():
            raise ConfigError(f"model.init_from: {pointer} points to {best}, which holds no checkpoint")
        return str(best)
    if path.is_dir() and not (path / "config.json").is_file():
        raise ConfigError(
            f"model.init_from: {path} is neither a checkpoint folder (config.json) nor a finished stage "
            "(best_checkpoint.json); a stage without a selected best checkpoint cannot seed the next one"
        )
    return init_from


def load_model_and_processor(model_cfg: dict):
    """Build (preset) or load (folder / hub id / previous stage) the model and its processor."""
    import torch
    from ccexpert.checkpoints import CheckpointError, is_local, resolve_checkpoint
    from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration
    from ccexpert.processing import CCExpertProcessor

    # diff_branch None keeps the checkpoint's setting; True adds the RSICCLLM difference branch (zero-gated)
    branch = {} if model_cfg.get("diff_branch") is None else {"diff_branch": bool(model_cfg["diff_branch"])}
    # change_mask_loss_weight None keeps the checkpoint's setting; > 0 adds (or keeps) the auxiliary change-mask head
    if model_cfg.get("change_mask_loss_weight") is not None:
        branch["change_mask_loss_weight"] = float(model_cfg["change_mask_loss_weight"])
    if model_cfg["preset"] is not None:
        from ccexpert.presets import build_model, build_tiny_tokenizer

        if model_cfg["preset"] != "tiny":
            raise ConfigError("model.preset builds random weights and is only meant for 'tiny'; use model.init_from")
        tokenizer = build_tiny_tokenizer()
        model = build_model("tiny", tokenizer, seed=int(model_cfg["seed"]), use_dim=bool(model_cfg["use_dim"]),
                            **branch)
        processor = CCExpertProcessor(tokenizer)
    else:
        source = resolve_init(model_cfg["init_from"])
        if not is_local(source):  # a hub id: train from its snapshot in the Hugging Face cache, like a folder
            try:
                source = str(resolve_checkpoint(source))
            except CheckpointError as exc:
                raise ConfigError(f"model.init_from: {exc}") from exc
        # use_dim=True on a plain OV checkpoint adds a freshly initialised DIM (stage 1, reference §2.7);
        # use_dim=False builds the OV baseline (any DIM weights in the checkpoint are ignored).
        model = CCExpertForConditionalGeneration.from_pretrained(
            source, dtype=torch.float32, use_dim=bool(model_cfg["use_dim"]), **branch
        )
        processor = CCExpertProcessor.from_pretrained(source)
    return model, processor


# ---------------------------------------------------------------------------------------------------------------
# the trainer


def _build_trainer_class():
    import torch
    from transformers import Trainer, TrainerCallback

    from .collator import TrainCollator
    from .metrics import evaluate_predictions

    class CaptionTrainer(Trainer):
        """HF Trainer with our AdamW param groups and caption-metric evaluation (greedy generation + LEVIR-CC)."""

        def __init__(self, *args, stage_config: dict, val_records, eval_processor, **kwargs):
            super().__init__(*args, **kwargs)
            self.stage_config = stage_config
            self.val_records = list(val_records)
            self.eval_processor = eval_processor

        def create_optimizer(self, model=None):
            if self.optimizer is None:
                optim = self.stage_config["optim"]
                groups = param_groups(
                    model or self.model, optim["learning_rate"], optim["lr_scale"], optim["weight_decay"]
                )
                self.optimizer = torch.optim.AdamW(
                    groups,
                    lr=optim["learning_rate"],
                    betas=(optim["adam_beta1"], optim["adam_beta2"]),
                    eps=optim["adam_epsilon"],
                    weight_decay=optim["weight_decay"],
                )
            return self.optimizer

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
            predictions = generate_predictions(
                self.model,
                self.eval_processor,
                self.val_records,
                batch_size=self.stage_config["batch"]["eval_batch_size"],
                max_new_tokens=self.stage_config["training"]["eval_max_new_tokens"],
                distributed=True,
            )
            metrics = broadcast_metrics(lambda: _metrics_from(predictions, evaluate_predictions))
            metrics = {f"{metric_key_prefix}_{k}": v for k, v in metrics.items()}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    class EpochCallback(TrainerCallback):
        """Tells the dataset the epoch, so random_choice draws a fresh caption per pair per epoch."""

        def __init__(self, dataset):
            self.dataset = dataset

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.dataset.set_epoch(math.floor((state.epoch or 0) + 1e-6))

    class FinalStepCallback(TrainerCallback):
        """Evaluate and save at the last step too, so the final weights compete for 'best'."""

        def on_step_end(self, args, state, control, **kwargs):
            # with the epoch strategy the trainer already evaluates at the end of the (last) epoch
            if args.eval_strategy == "steps" and state.global_step >= state.max_steps:
                control.should_evaluate = True
                control.should_save = True
            return control

    class OptimizerReportCallback(TrainerCallback):
        """Writes ``<output_dir>/optimizer_groups.json`` after the first optimizer step: the param groups and
        learning rates as the optimizer that actually steps holds them (DeepSpeed's ZeRO optimizer under DeepSpeed),
        and the median |update| of a few tensors per part (for AdamW's first step that is ~ the group's lr)."""

        def __init__(self, output_dir: Path):
            self.output_dir = output_dir
            self.trainer = None
            self.before: dict[str, torch.Tensor] = {}

        def _probe(self, model) -> dict:
            chosen: dict[str, list] = {}
            for name, param in model.named_parameters():
                part = part_of(name)
                if param.requires_grad and param.dim() >= 1 and param.numel() > 0 and len(chosen.get(part, [])) < 3:
                    chosen.setdefault(part, []).append((name, param))
            return {name: param for items in chosen.values() for name, param in items}

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if state.global_step == 0 and model is not None:
                self.before = {n: p.detach().float().clone() for n, p in self._probe(model).items() if p.numel()}

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if self.trainer is None or self.output_dir is None or not args.should_save:
                return
            engine = self.trainer.model_wrapped
            optimizer = getattr(engine, "optimizer", None) if hasattr(engine, "module") else None
            source = "deepspeed" if optimizer is not None and hasattr(engine, "zero_optimization_stage") else "torch"
            optimizer = optimizer or self.trainer.optimizer
            names = {id(p): n for n, p in self.trainer.model.named_parameters()}
            bit16 = getattr(optimizer, "bit16_groups", None)
            groups = []
            for index, group in enumerate(optimizer.param_groups):
                if bit16 is not None:
                    members = sorted(names.get(id(p), "<partition>") for p in bit16[index])
                else:
                    members = group.get("param_names") or [names.get(id(p), "<partition>") for p in group["params"]]
                    members = sorted(members)
                groups.append({"name": group.get("name"), "lr": group["lr"], "initial_lr": group.get("initial_lr"),
                               "lr_scale": group.get("lr_scale"), "param_names": members})
            updates: dict[str, list[float]] = {}
            if self.before and state.global_step == 1:
                for name, param in self._probe(model).items():
                    if name in self.before and param.numel() == self.before[name].numel():
                        delta = (param.detach().float() - self.before[name]).abs().flatten()
                        delta = delta[delta > 0]
                        if delta.numel():
                            updates.setdefault(part_of(name), []).append(delta.median().item())
            report = {
                "step": state.global_step,
                "optimizer": type(optimizer).__name__,
                "wrapped_optimizer": type(getattr(optimizer, "optimizer", optimizer)).__name__,
                "source": source,
                "groups": groups,
                "median_abs_update_step1": {k: sorted(v)[len(v) // 2] for k, v in updates.items()},
            }
            if state.global_step == 1 or not (self.output_dir / "optimizer_groups.json").exists():
                (self.output_dir / "optimizer_groups.json").write_text(json.dumps(report, indent=2) + "\n")

    return CaptionTrainer, EpochCallback, FinalStepCallback, OptimizerReportCallback, TrainCollator


def _metrics_from(predictions, evaluate_predictions) -> dict:
    report = evaluate_predictions(predictions)
    overall = report.overall
    renamed = {"Sm": overall["S*m"]}
    for key in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "change_accuracy"):
        renamed[key] = overall[key]
    return renamed


def broadcast_metrics(compute) -> dict:
    """Rank 0 computes (METEOR runs one JVM, not one per rank); every rank gets the same dict."""
    import torch.distributed as dist

    rank, world = _world()
    if world == 1 or not dist.is_initialized():
        return compute()
    box = [compute() if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def generate_predictions(model, processor, records, batch_size: int, max_new_tokens: int, distributed: bool):
    """Greedy captions for ``records`` -> list[Prediction] (complete on every rank when ``distributed``).

    Ranks take interleaved shards padded to equal length (ZeRO-3 generation is collective); padding is dropped
    before gathering, so each uid is scored exactly once.
    """
    import torch
    import torch.distributed as dist
    from ccexpert.engine import CaptionEngine

    from .records import Prediction

    rank, world = _world() if distributed else (0, 1)
    records = list(records)
    per_rank = math.ceil(len(records) / world)
    mine = records[rank::world]
    padded = mine + [records[0]] * (per_rank - len(mine))
    was_training = model.training
    engine = CaptionEngine(model, processor, max_batch=batch_size)
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(padded), batch_size):
                chunk = padded[start : start + batch_size]
                pairs = [record.load_images() for record in chunk]
                results = engine.caption(pairs, max_new_tokens=max_new_tokens)
                for offset, (record, result) in enumerate(zip(chunk, results, strict=True)):
                    if start + offset < len(mine):
                        out.append(Prediction(record.uid, result.caption, tuple(record.captions)))
    finally:
        model.train(was_training)
    if world > 1 and dist.is_initialized():
        gathered: list = [None] * world
        dist.all_gather_object(gathered, out)
        out = [p for part in gathered for p in part]
    return out


def _cpu_deepspeed_state() -> bool:
    """DeepSpeed on CPU: set up accelerate's process state with gloo ourselves. TrainingArguments passes no backend
    on the DeepSpeed path, so accelerate finds no CPU backend and reports a world of ONE process although
    DeepSpeed initialised gloo with all of them (the batch-size check then fails)."""
    from accelerate import PartialState

    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    try:
        state = PartialState(backend="gloo")
    finally:
        del os.environ["ACCELERATE_USE_DEEPSPEED"]
    _, world = _world()
    if state.num_processes != world:
        raise RuntimeError(f"accelerate sees {state.num_processes} processes, the launcher started {world}")
    return True


def _precision(setting: str) -> bool:
    """True = bf16. auto: bf16 on a GPU that supports it, fp32 on CPU."""
    import torch

    if setting == "auto":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if setting == "bf16" and not torch.cuda.is_available():
        raise ConfigError("training.precision=bf16 needs a GPU; use auto or fp32 on CPU")
    return setting == "bf16"


def _load_records(spec, name: str, max_pairs: int | None = None, seed: int = 0):
    from .records import read_records

    records = read_records(spec)
    if max_pairs is not None and len(records) > max_pairs:
        records = random.Random(seed).sample(records, max_pairs)
    return records


def run_stage(config: str | Path | Mapping, overrides: Mapping | None = None, callbacks: Sequence = ()) -> Path:
    """Train one stage (see the module docstring) and return ``<output_dir>/best``."""
    cfg = load_stage_config(config, overrides)
    training, batch, optim, data = cfg["training"], cfg["batch"], cfg["optim"], cfg["data"]
    use_deepspeed = training["deepspeed"] is not None
    _prepare_environment(use_deepspeed)

    import torch
    from transformers import TrainingArguments, set_seed

    from .dataset import CaptionPairDataset, PairEvalDataset
    from .mixture import load_mixture
    from .records import check_records

    CaptionTrainer, EpochCallback, FinalStepCallback, OptimizerReport, TrainCollator = _build_trainer_class()
    output_dir = Path(training["output_dir"])
    rank, world = _world()
    resume = training["resume_from_checkpoint"]
    if resume is None and output_dir.is_dir() and any(output_dir.glob("checkpoint-*")):
        raise ConfigError(
            f"{output_dir} already holds checkpoints: resume (training.resume_from_checkpoint / --resume) or choose "
            "a new training.output_dir"
        )

    micro = batch["per_device_train_batch_size"]
    if batch["global_batch_size"] % (micro * world):
        raise ConfigError(
            f"batch.global_batch_size={batch['global_batch_size']} is not divisible by per-device "
            f"{micro} x {world} processes; change batch.per_device_train_batch_size"
        )
    accumulation = batch["global_batch_size"] // (micro * world)

    set_seed(training["seed"])
    val_records = _load_records(data["val"], "data.val", data["max_val_pairs"], training["seed"])
    if data["preflight"]:
        check_records(val_records)
        if data["test"] is not None:  # scored after training: a bad test record must fail now, not then
            check_records(_load_records(data["test"], "data.test"))
    dnpo = cfg["dnpo"]["preferences"] is not None
    if dnpo:  # stage 4: chosen/rejected caption pairs (ccexpert preferences) instead of a caption mixture
        from .dnpo import PreferenceDataset
        from .preferences import PreferenceError, read_preferences

        try:
            train_dataset = PreferenceDataset(read_preferences(cfg["dnpo"]["preferences"]))
        except PreferenceError as exc:
            raise ConfigError(f"dnpo.preferences: {exc}") from exc
        summary = f"{len(train_dataset)} preference pairs"
    else:
        train_spec = data["train"]
        if isinstance(train_spec, dict):
            train_spec = {k: v for k, v in train_spec.items() if k != "_base_dir"}
            mixture = load_mixture(train_spec, data["train"].get("_base_dir"), caption_mode=data["caption_mode"])
        else:
            mixture = load_mixture(train_spec, caption_mode=data["caption_mode"])
        if data["preflight"]:
            check_records(mixture.records())
        train_dataset = CaptionPairDataset(mixture.samples(), seed=training["seed"], cache_images=data["cache_images"])
        summary = mixture.summary()
    if rank == 0:
        print(f"[{cfg['stage']}] train: {summary}; val: {len(val_records)} pairs", flush=True)

    # A preset is built before TrainingArguments: under ZeRO-3 those switch on zero.Init, which partitions parameters
    # as they are created and breaks from-scratch initialisation. Checkpoints load after it (partitioned on load).
    preset = load_model_and_processor(cfg["model"]) if cfg["model"]["preset"] is not None else None
    bf16 = _precision(training["precision"])
    ds_config = load_deepspeed_config(training["deepspeed"]) if use_deepspeed else None
    accelerator_config = None
    if use_deepspeed and not torch.cuda.is_available():
        accelerator_config = {"use_configured_state": _cpu_deepspeed_state()}
    eval_steps = training["eval_steps"]
    strategy = "epoch" if eval_steps == "epoch" else "steps"
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=micro,
        per_device_eval_batch_size=batch["eval_batch_size"],
        gradient_accumulation_steps=accumulation,
        learning_rate=optim["learning_rate"],
        weight_decay=optim["weight_decay"],
        adam_beta1=optim["adam_beta1"],
        adam_beta2=optim["adam_beta2"],
        adam_epsilon=optim["adam_epsilon"],
        max_grad_norm=optim["max_grad_norm"],
        lr_scheduler_type=optim["lr_scheduler_type"],
        warmup_steps=float(optim["warmup_ratio"]),  # < 1: a ratio of the total steps
        num_train_epochs=training["num_train_epochs"],
        max_steps=training["max_steps"],
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=None if strategy == "epoch" else eval_steps,
        save_steps=None if strategy == "epoch" else eval_steps,
        save_total_limit=training["save_total_limit"],
        metric_for_best_model=METRIC_FOR_BEST,
        greater_is_better=True,
        load_best_model_at_end=False,  # we export the best checkpoint ourselves (works for ZeRO-2 and ZeRO-3)
        logging_steps=training["logging_steps"],
        logging_first_step=True,
        report_to=training["report_to"],
        bf16=bf16,
        tf32=True if torch.cuda.is_available() else None,
        activation_checkpointing=training["gradient_checkpointing"],
        activation_checkpointing_kwargs={"use_reentrant": False},
        deepspeed=ds_config,
        ddp_backend="gloo" if world > 1 and not torch.cuda.is_available() else None,
        seed=training["seed"],
        data_seed=training["seed"],
        dataloader_num_workers=training["dataloader_num_workers"],
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,
        torch_compile=training["torch_compile"],
        disable_tqdm=rank != 0,
        accelerator_config=accelerator_config,
    )

    model, processor = preset or load_model_and_processor(cfg["model"])
    with_masks = not dnpo and model.config.change_mask_loss_weight > 0
    if with_masks:
        if not any(record.mask is not None for record in mixture.records()):
            raise ConfigError(
                "model.change_mask_loss_weight > 0 needs change masks, but no training record has a 'mask'; "
                "build the data with masks (ccexpert synth / build-dataset) or set the weight to 0"
            )
        train_dataset.with_masks = True
    trainable = apply_trainable(model, [*cfg["trainable"], "change_mask_head"] if with_masks else cfg["trainable"])
    if rank == 0:
        count = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
        print(f"[{cfg['stage']}] trainable parts {cfg['trainable']}: {len(trainable)} tensors, {count:,} params; "
              f"global batch {batch['global_batch_size']} = {micro} x {accumulation} x {world}", flush=True)
    if training["gradient_checkpointing"]:
        model.config.use_cache = False
    train_processor = copy.copy(processor)
    train_processor.padding_side = "right"  # the reference pads training batches on the right

    output_dir.mkdir(parents=True, exist_ok=True)
    report = OptimizerReport(output_dir)
    trainer_class, collator, extra = CaptionTrainer, TrainCollator(train_processor), {}
    epoch_callbacks = [] if dnpo else [EpochCallback(train_dataset)]
    if dnpo:
        from .dnpo import dnpo_stage_trainer

        # the frozen reference: dnpo.reference, or (None) the policy's starting weights loaded once more, so that under
        # ZeRO-3 it is partitioned at load like the policy (a deepcopy of a partitioned model would not be)
        reference_cfg = dict(cfg["model"])
        if cfg["dnpo"]["reference"] is not None:
            reference_cfg.update(init_from=cfg["dnpo"]["reference"], preset=None)
        reference = load_model_and_processor(reference_cfg)[0]
        trainer_class, collator, extra = dnpo_stage_trainer(CaptionTrainer, cfg["dnpo"], train_processor, reference)
    trainer = trainer_class(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=train_dataset,
        eval_dataset=PairEvalDataset(val_records),
        processing_class=processor.tokenizer,
        callbacks=[*epoch_callbacks, FinalStepCallback(), report, *callbacks],
        stage_config=cfg,
        val_records=val_records,
        eval_processor=processor,
        **extra,
    )
    report.trainer = trainer
    trainer.train(resume_from_checkpoint=resume)

    best = trainer.state.best_model_checkpoint
    if best is None:
        raise RuntimeError(f"[{cfg['stage']}] no checkpoint was evaluated on the validation split; nothing to select")
    best_dir = output_dir / "best"
    if trainer.args.should_save:
        _export_best(Path(best), best_dir, processor)
        pointer = {
            "best_dir": "best",
            "checkpoint": Path(best).name,
            "step": int(Path(best).name.split("-")[-1]),
            "metric": f"eval_{METRIC_FOR_BEST}",
            "value": trainer.state.best_metric,
            "selected_on": str(data["val"]),
            "stage": cfg["stage"],
        }
        (output_dir / "best_checkpoint.json").write_text(json.dumps(pointer, indent=2) + "\n")
        (output_dir / "stage_config.json").write_text(json.dumps(cfg, indent=2, default=str) + "\n")
    _barrier()
    if data["test"] is not None and rank == 0:
        evaluate_checkpoint(best_dir, data["test"], output_dir, cfg)
    _barrier()
    return best_dir


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _export_best(checkpoint: Path, best_dir: Path, processor) -> None:
    """Copy the weights + config of the selected checkpoint into a clean model folder (no optimizer state)."""
    if best_dir.exists():
        shutil.rmtree(best_dir)
    best_dir.mkdir(parents=True)
    copied = []
    for item in checkpoint.iterdir():
        if item.is_file() and (item.suffix in (".safetensors", ".json") and not item.name.startswith("trainer_state")):
            if item.name.startswith(("rng_state", "scheduler", "optimizer")):
                continue
            shutil.copy2(item, best_dir / item.name)
            copied.append(item.name)
    if not any(name.endswith(".safetensors") for name in copied):
        raise RuntimeError(f"{checkpoint} holds no safetensors weights (ZeRO-3 needs "
                           "stage3_gather_16bit_weights_on_model_save: true)")
    processor.save_pretrained(best_dir)


def evaluate_checkpoint(model_dir: Path, records_path, output_dir: Path, cfg: dict) -> dict:
    """Score one checkpoint on one split (the single final test evaluation): predictions + metrics JSON."""
    import torch
    from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration
    from ccexpert.processing import CCExpertProcessor

    from .metrics import evaluate_predictions
    from .records import read_records, write_predictions

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if _precision(cfg["training"]["precision"]) else torch.float32
    model = CCExpertForConditionalGeneration.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    processor = CCExpertProcessor.from_pretrained(model_dir)
    predictions = generate_predictions(
        model, processor, read_records(records_path), cfg["batch"]["eval_batch_size"],
        cfg["training"]["eval_max_new_tokens"], distributed=False,
    )
    write_predictions(predictions, output_dir / "test_predictions.jsonl")
    report = evaluate_predictions(predictions)
    result = {"overall": report.overall, "change": report.change, "no_change": report.no_change,
              "checkpoint": str(model_dir), "split": str(records_path)}
    (output_dir / "test_metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"[{cfg['stage']}] test: S*m {report.overall['S*m']:.2f} on {report.overall['n']} pairs", flush=True)
    return result


# ---------------------------------------------------------------------------------------------------------------
# launching several processes


def launch_stage(
    config: str | Path | Mapping,
    overrides: Mapping | None = None,
    nproc: int = 1,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Path:
    """Run :func:`run_stage` in ``nproc`` fresh processes with torchrun (gloo on CPU) and return the best dir."""
    cfg = load_stage_config(config, overrides)  # validate here, and pass the resolved dict on
    output_dir = Path(cfg["training"]["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = output_dir / "launch_config.json"
    resolved.write_text(json.dumps(cfg, indent=2, default=str))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--nnodes", "1",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "ccexpert_training.commands.train", "--config", str(resolved),
    ]
    full_env = {**os.environ, **(env or {}), "CCEXPERT_LAUNCHED": "1"}
    subprocess.run(command, check=True, env=full_env, timeout=timeout)
    pointer = json.loads((output_dir / "best_checkpoint.json").read_text())
    return output_dir / pointer["best_dir"]


def parse_overrides(items: Sequence[str]) -> dict:
    """``["optim.learning_rate=1e-3", "trainable=[dim]"]`` -> dict (values parsed as YAML scalars/lists)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
