"""``run_stage``: train one stage in this process (single process, or one rank of a torchrun/deepspeed launch)."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import load_deepspeed_config, load_stage_config
from .distributed import barrier, cpu_deepspeed_state, prepare_environment, use_bf16, world
from .errors import ConfigError
from .evaluate import METRIC_FOR_BEST, evaluate_checkpoint, export_best
from .model import load_model_and_processor
from .parts import apply_trainable
from .schema import StageConfig


def _load_records(spec, max_pairs: int | None = None, seed: int = 0):
    from ..records import read_records

    records = read_records(spec)
    if max_pairs is not None and len(records) > max_pairs:
        records = random.Random(seed).sample(records, max_pairs)
    return records


def _train_data(cfg: StageConfig):
    """(train dataset, mixture or None for DNPO, one-line summary)."""
    from ..dataset import CaptionPairDataset
    from ..mixture import load_mixture
    from ..records import check_records

    data, seed = cfg.data, cfg.training.seed
    if cfg.dnpo.preferences is not None:  # stage 4: chosen/rejected caption pairs (ccexpert preferences)
        from ..dnpo import PreferenceDataset
        from ..preferences import PreferenceError, read_preferences

        try:
            pairs = PreferenceDataset(read_preferences(cfg.dnpo.preferences))
        except PreferenceError as exc:
            raise ConfigError(f"dnpo.preferences: {exc}") from exc
        return pairs, None, f"{len(pairs)} preference pairs"
    assert data.train is not None  # the validator requires data.train without dnpo.preferences
    if isinstance(data.train, dict):
        spec = {k: v for k, v in data.train.items() if k != "_base_dir"}
        mixture = load_mixture(spec, data.train.get("_base_dir"), caption_mode=data.caption_mode)
    else:
        mixture = load_mixture(data.train, caption_mode=data.caption_mode)
    if data.preflight:
        check_records(mixture.records())
    dataset = CaptionPairDataset(mixture.samples(), seed=seed, cache_images=data.cache_images)
    return dataset, mixture, mixture.summary()


def _training_arguments(cfg: StageConfig, accumulation: int, size: int, rank: int):
    import torch
    from transformers import TrainingArguments

    training, batch, optim = cfg.training, cfg.batch, cfg.optim
    bf16 = use_bf16(training.precision)
    ds_config = load_deepspeed_config(training.deepspeed) if training.deepspeed is not None else None
    accelerator_config = None
    if ds_config is not None and not torch.cuda.is_available():
        accelerator_config = {"use_configured_state": cpu_deepspeed_state()}
    strategy = "epoch" if training.eval_steps == "epoch" else "steps"
    steps: Any = None if strategy == "epoch" else training.eval_steps
    return TrainingArguments(
        output_dir=cfg.output_dir,
        per_device_train_batch_size=batch.per_device_train_batch_size,
        per_device_eval_batch_size=batch.eval_batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=optim.learning_rate,
        weight_decay=optim.weight_decay,
        adam_beta1=optim.adam_beta1,
        adam_beta2=optim.adam_beta2,
        adam_epsilon=optim.adam_epsilon,
        max_grad_norm=optim.max_grad_norm,
        lr_scheduler_type=optim.lr_scheduler_type,
        warmup_steps=float(optim.warmup_ratio),  # < 1: a ratio of the total steps
        num_train_epochs=training.num_train_epochs,
        max_steps=training.max_steps,
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=steps,
        save_steps=steps,
        save_total_limit=training.save_total_limit,
        metric_for_best_model=METRIC_FOR_BEST,
        greater_is_better=True,
        load_best_model_at_end=False,  # we export the best checkpoint ourselves (works for ZeRO-2 and ZeRO-3)
        logging_steps=training.logging_steps,
        logging_first_step=True,
        report_to=training.report_to if isinstance(training.report_to, str) else list(training.report_to),
        bf16=bf16,
        tf32=True if torch.cuda.is_available() else None,
        activation_checkpointing=training.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        deepspeed=ds_config,
        ddp_backend="gloo" if size > 1 and not torch.cuda.is_available() else None,
        seed=training.seed,
        data_seed=training.seed,
        dataloader_num_workers=training.dataloader_num_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,
        torch_compile=training.torch_compile,
        disable_tqdm=rank != 0,
        accelerator_config=accelerator_config,
    )


def run_stage(config: str | Path | Mapping, overrides: Mapping | None = None, callbacks: Sequence = ()) -> Path:
    """Train one stage (see ``ccexpert_training.stage``) and return ``<output_dir>/best``."""
    cfg = load_stage_config(config, overrides)
    training, batch, data = cfg.training, cfg.batch, cfg.data
    prepare_environment(training.deepspeed is not None)

    from transformers import set_seed

    from ..dataset import PairEvalDataset
    from ..records import check_records
    from .trainer import CaptionTrainer, EpochCallback, FinalStepCallback, OptimizerReportCallback, TrainCollator

    output_dir = Path(cfg.output_dir)
    rank, size = world()
    resume = training.resume_from_checkpoint
    if resume is None and output_dir.is_dir() and any(output_dir.glob("checkpoint-*")):
        raise ConfigError(
            f"{output_dir} already holds checkpoints: resume (training.resume_from_checkpoint / --resume) or choose "
            "a new training.output_dir"
        )
    micro = batch.per_device_train_batch_size
    if batch.global_batch_size % (micro * size):
        raise ConfigError(
            f"batch.global_batch_size={batch.global_batch_size} is not divisible by per-device "
            f"{micro} x {size} processes; change batch.per_device_train_batch_size"
        )
    accumulation = batch.global_batch_size // (micro * size)

    set_seed(training.seed)
    val_records = _load_records(data.val, data.max_val_pairs, training.seed)
    if data.preflight:
        check_records(val_records)
        if data.test is not None:  # scored after training: a bad test record must fail now, not then
            check_records(_load_records(data.test))
    train_dataset, mixture, summary = _train_data(cfg)
    if rank == 0:
        print(f"[{cfg.stage}] train: {summary}; val: {len(val_records)} pairs", flush=True)

    # A preset is built before TrainingArguments: under ZeRO-3 those switch on zero.Init, which partitions parameters
    # as they are created and breaks from-scratch initialisation. Checkpoints load after it (partitioned on load).
    preset = load_model_and_processor(cfg.model) if cfg.model.preset is not None else None
    args = _training_arguments(cfg, accumulation, size, rank)
    model, processor = preset or load_model_and_processor(cfg.model)
    with_masks = mixture is not None and model.config.change_mask_loss_weight > 0
    if with_masks:
        if not any(record.mask is not None for record in mixture.records()):
            raise ConfigError(
                "model.change_mask_loss_weight > 0 needs change masks, but no training record has a 'mask'; "
                "build the data with masks (ccexpert synth / build-dataset) or set the weight to 0"
            )
        train_dataset.with_masks = True
    trainable = apply_trainable(model, [*cfg.trainable, "change_mask_head"] if with_masks else cfg.trainable)
    if rank == 0:
        count = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
        print(
            f"[{cfg.stage}] trainable parts {list(cfg.trainable)}: {len(trainable)} tensors, {count:,} params; "
            f"global batch {batch.global_batch_size} = {micro} x {accumulation} x {size}",
            flush=True,
        )
    if training.gradient_checkpointing:
        model.config.use_cache = False
    train_processor = copy.copy(processor)
    train_processor.padding_side = "right"  # the reference pads training batches on the right

    output_dir.mkdir(parents=True, exist_ok=True)
    report = OptimizerReportCallback(output_dir)
    trainer_class, collator, extra = CaptionTrainer, TrainCollator(train_processor), {}
    epoch_callbacks = [] if cfg.uses_dnpo else [EpochCallback(train_dataset)]
    if cfg.uses_dnpo:
        from ..dnpo import dnpo_stage_trainer

        # the frozen reference: dnpo.reference, or (None) the policy's starting weights loaded once more, so that under
        # ZeRO-3 it is partitioned at load like the policy (a deepcopy of a partitioned model would not be)
        reference_cfg = cfg.model
        if cfg.dnpo.reference is not None:
            reference_cfg = dataclasses.replace(cfg.model, init_from=cfg.dnpo.reference, preset=None)
        reference = load_model_and_processor(reference_cfg)[0]
        trainer_class, collator, extra = dnpo_stage_trainer(CaptionTrainer, cfg.dnpo, train_processor, reference)
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
    return _finish(cfg, trainer, processor, output_dir, rank)


def _finish(cfg: StageConfig, trainer, processor, output_dir: Path, rank: int) -> Path:
    """Export the checkpoint selected on validation, record it, and score it once on data.test when set."""
    best = trainer.state.best_model_checkpoint
    if best is None:
        raise RuntimeError(f"[{cfg.stage}] no checkpoint was evaluated on the validation split; nothing to select")
    best_dir = output_dir / "best"
    if trainer.args.should_save:
        export_best(Path(best), best_dir, processor)
        pointer = {
            "best_dir": "best",
            "checkpoint": Path(best).name,
            "step": int(Path(best).name.split("-")[-1]),
            "metric": f"eval_{METRIC_FOR_BEST}",
            "value": trainer.state.best_metric,
            "selected_on": str(cfg.data.val),
            "stage": cfg.stage,
        }
        (output_dir / "best_checkpoint.json").write_text(json.dumps(pointer, indent=2) + "\n")
        (output_dir / "stage_config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str) + "\n")
    barrier()
    if cfg.data.test is not None and rank == 0:
        evaluate_checkpoint(best_dir, cfg.data.test, output_dir, cfg)
    barrier()
    return best_dir
