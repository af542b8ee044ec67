"""Model loading for a stage: build a preset, or load a checkpoint folder / hub id / a previous stage's BEST
checkpoint, with the optional modules (DIM, difference branch, change-mask head) the ``model`` section asks for."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ConfigError
from .schema import ModelSection


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


def load_model_and_processor(model_cfg: ModelSection):
    """Build (preset) or load (folder / hub id / previous stage) the model and its processor."""
    import torch
    from ccexpert.checkpoints import CheckpointError, is_local, resolve_checkpoint
    from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration
    from ccexpert.processing_ccexpert import CCExpertProcessor

    # diff_branch None keeps the checkpoint's setting; True adds the RSICCLLM difference branch (zero-gated)
    branch: dict = {} if model_cfg.diff_branch is None else {"diff_branch": bool(model_cfg.diff_branch)}
    # change_mask_loss_weight None keeps the checkpoint's setting; > 0 adds (or keeps) the auxiliary change-mask head
    if model_cfg.change_mask_loss_weight is not None:
        branch["change_mask_loss_weight"] = float(model_cfg.change_mask_loss_weight)
    if model_cfg.preset is not None:
        from ccexpert.presets import build_model, build_tiny_tokenizer

        if model_cfg.preset != "tiny":
            raise ConfigError("model.preset builds random weights and is only meant for 'tiny'; use model.init_from")
        tokenizer = build_tiny_tokenizer()
        model = build_model("tiny", tokenizer, seed=int(model_cfg.seed), use_dim=bool(model_cfg.use_dim), **branch)
        processor = CCExpertProcessor(tokenizer)
    else:
        if model_cfg.init_from is None:
            raise ConfigError("set exactly one of model.init_from or model.preset")
        source = resolve_init(model_cfg.init_from)
        if not is_local(source):  # a hub id: train from its snapshot in the Hugging Face cache, like a folder
            try:
                source = str(resolve_checkpoint(source))
            except CheckpointError as exc:
                raise ConfigError(f"model.init_from: {exc}") from exc
        # use_dim=True on a plain OV checkpoint adds a freshly initialised DIM (stage 1, reference §2.7);
        # use_dim=False builds the OV baseline (any DIM weights in the checkpoint are ignored).
        model = CCExpertForConditionalGeneration.from_pretrained(
            source, dtype=torch.float32, use_dim=bool(model_cfg.use_dim), **branch
        )
        processor = CCExpertProcessor.from_pretrained(source)
    return model, processor
