"""The HF Trainer of a stage and its callbacks.

Importing this module imports torch and transformers; :func:`ccexpert_training.stage.run.run_stage` imports it when
a stage starts, so loading and validating configs stays light.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from ..collator import TrainCollator
from . import evaluate
from .parts import param_groups, part_of
from .schema import StageConfig

__all__ = ["CaptionTrainer", "EpochCallback", "FinalStepCallback", "OptimizerReportCallback", "TrainCollator"]


class CaptionTrainer(Trainer):
    """HF Trainer with our AdamW param groups and caption-metric evaluation (greedy generation + LEVIR-CC)."""

    def __init__(self, *args, stage_config: StageConfig, val_records, eval_processor, **kwargs):
        super().__init__(*args, **kwargs)
        self.stage_config = stage_config
        self.val_records = list(val_records)
        self.eval_processor = eval_processor

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            optim = self.stage_config.optim
            groups = param_groups(model or self.model, optim.learning_rate, optim.lr_scale, optim.weight_decay)
            self.optimizer = torch.optim.AdamW(
                groups,
                lr=optim.learning_rate,
                betas=(optim.adam_beta1, optim.adam_beta2),
                eps=optim.adam_epsilon,
                weight_decay=optim.weight_decay,
            )
        return self.optimizer

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        predictions = evaluate.generate_predictions(  # looked up at call time (tests replace it)
            self.model,
            self.eval_processor,
            self.val_records,
            batch_size=self.stage_config.batch.eval_batch_size,
            max_new_tokens=self.stage_config.training.eval_max_new_tokens,
            distributed=True,
        )
        metrics = evaluate.broadcast_metrics(lambda: evaluate.metrics_from(predictions))
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
    """Writes ``<output_dir>/optimizer_groups.json`` after the first optimizer step: the param groups and learning
    rates as the optimizer that actually steps holds them (DeepSpeed's ZeRO optimizer under DeepSpeed), and the
    median |update| of a few tensors per part (for AdamW's first step that is ~ the group's lr)."""

    def __init__(self, output_dir: Path):
        self.output_dir = output_dir
        self.trainer: Trainer | None = None
        self.before: dict[str, torch.Tensor] = {}

    def _probe(self, model) -> dict:
        chosen: dict[str | None, list] = {}
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
        if optimizer is None or self.trainer.model is None:  # before the Trainer built them: nothing to record
            return
        names = {id(p): n for n, p in self.trainer.model.named_parameters()}
        bit16 = getattr(optimizer, "bit16_groups", None)
        groups = []
        for index, group in enumerate(optimizer.param_groups):
            if bit16 is not None:
                members = sorted(names.get(id(p), "<partition>") for p in bit16[index])
            else:
                members = group.get("param_names") or [names.get(id(p), "<partition>") for p in group["params"]]
                members = sorted(members)
            groups.append(
                {
                    "name": group.get("name"),
                    "lr": group["lr"],
                    "initial_lr": group.get("initial_lr"),
                    "lr_scale": group.get("lr_scale"),
                    "param_names": members,
                }
            )
        updates: dict[str | None, list[float]] = {}
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
