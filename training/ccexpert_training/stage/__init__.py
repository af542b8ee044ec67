"""Three-stage CCExpert training with the HF Trainer and DeepSpeed (ccexpert_model.md §4), without the reference's
recipe bugs.

Python API (used by ``ccexpert train`` and by the demo-model builder; ``ccexpert_training.train`` re-exports it)::

    from ccexpert_training.stage.launch import launch_stage
    from ccexpert_training.stage.run import run_stage

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

Config layout (see ``configs/stage1.yaml``; typed in :mod:`.schema`): ``base`` (a config to inherit from),
``stage``, ``model`` (``init_from`` or ``preset``, ``use_dim``), ``trainable`` (parts: vision_tower, dim,
diff_branch, projector, language_model), ``data`` (``train`` mixture, ``caption_mode``, ``val``, ``test``), ``optim``,
``batch`` (``global_batch_size`` and ``per_device_train_batch_size``; accumulation = global / (per-device x world
size), so the global batch stays at the paper's value on any GPU count), ``dnpo``, ``training``. ``${VAR}`` in
strings expands environment variables (an unset one is an error); relative paths are relative to the file that sets
them (to the working directory for overrides).

Modules: :mod:`.config` (loading and merging), :mod:`.schema` (the typed sections and their validator),
:mod:`.parts` (trainable-parts table, optimizer groups), :mod:`.model` (model loading), :mod:`.trainer` (the Trainer
and its callbacks; imports torch), :mod:`.evaluate` (validation metrics, export, the test evaluation),
:mod:`.distributed` (ranks, launcher environment), :mod:`.run` (``run_stage``), :mod:`.launch` (torchrun launch and
the launched processes' entry point). This package imports nothing at import time.
"""
