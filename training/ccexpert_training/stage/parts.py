"""The trainable-parts table: which parameters each part of CCExpertForConditionalGeneration owns, switching parts
on and off (``trainable`` in a stage config) and the AdamW parameter groups (``optim.lr_scale``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import ConfigError

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


def part_of(name: str) -> str | None:
    """The trainable part a parameter belongs to; None for the never-used ones; error for an unknown name."""
    if name.startswith(UNUSED_PREFIXES):
        return None
    for part, prefixes in PARTS.items():
        if name.startswith(prefixes):
            return part
    raise ConfigError(f"parameter {name!r} belongs to no known part {sorted(PARTS)}; update stage.parts.PARTS")


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
        scale = float(lr_scale.get(part, 1.0)) if part is not None else 1.0
        group = groups.setdefault(
            scale, {"params": [], "param_names": [], "lr": learning_rate * scale, "weight_decay": weight_decay}
        )
        group["params"].append(param)
        group["param_names"].append(name)
    out = []
    for scale, group in sorted(groups.items(), key=lambda item: -item[0]):
        parts = sorted({str(part_of(n)) for n in group["param_names"]})
        group["name"] = "+".join(parts) + (f"@x{scale:g}" if scale != 1.0 else "")
        group["lr_scale"] = scale
        out.append(group)
    return out
