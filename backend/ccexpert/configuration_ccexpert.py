"""CCExpert configuration: LLaVA-OneVision plus the Difference-aware Integration Module (DIM).

The fields follow ``docs/ARCHITECTURE.md``; the DIM hyper-parameters are those of the reference
(``../shared/reference/ccexpert_model.md`` §2): depth 2, heads = width / 128, MLP 4x width, four SigLIP scales.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, LlavaOnevisionConfig, PreTrainedConfig


@strict
class CCExpertConfig(LlavaOnevisionConfig):
    r"""
    dim_layers (`list[int]`, defaults to `[17, 20, 23, 26]`):
        Absolute indices into the vision tower's hidden-state tuple (entry 0 = patch embeddings, entry k = output of
        SigLIP layer k) feeding the DIM, ordered shallow to deep. The last entry is the "final stage": the DIM output is
        added to it before the projector (reference: layer 26 = the OV feature).
    dim_depth (`int`, defaults to 2):
        Number of change-aware layers.
    dim_num_heads (`int`, *optional*):
        Attention heads in the DIM; default `vision_config.hidden_size // 128` (9 at full size).
    dim_mlp_ratio (`int`, defaults to 4):
        DIM MLP width as a multiple of the vision width.
    use_dim (`bool`, defaults to `True`):
        `False` gives the plain LLaVA-OneVision baseline (729 tokens per image, no DIM parameters).
    diff_branch (`bool`, defaults to `False`):
        Add the optional RSICCLLM-style difference-aware branch (``modeling_ccexpert.DifferenceBranch``) to the vision
        features before the projector.
    change_mask_loss_weight (`float`, defaults to 0.0):
        Weight of an auxiliary training loss (``0`` = off, no extra parameters; needs the DIM): two linear heads
        predict, per image token, whether its patch changed (from the records' change masks), one on the DIM's fused
        change stream (where the two images are compared token by token) and one on the projected image tokens (what
        the LLM reads); their binary cross-entropies are added to the caption loss. A model trained from scratch (the
        demo model) otherwise settles on the caption prior and ignores the images. Not part of the reference;
        official checkpoints have it off.
    change_mask_min_fraction (`float`, defaults to 0.02):
        A patch counts as changed for that loss when at least this fraction of its pixels is changed in the mask.
    image_seq_length (`int`, defaults to 729):
        Placeholder tokens per `<image>`: (image_size / patch_size) ** 2.
    initializer_range (`float`, defaults to 0.02):
        Std of the normal init of the DIM, projector and lm_head (reference §2.7: N(0, 0.02), zero bias, no zero-init).
    """

    model_type = "ccexpert"

    dim_layers: list[int] | None = None
    dim_depth: int = 2
    dim_num_heads: int | None = None
    dim_mlp_ratio: int = 4
    use_dim: bool = True
    diff_branch: bool = False
    change_mask_loss_weight: float = 0.0
    change_mask_min_fraction: float = 0.02
    image_seq_length: int = 729
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.dim_layers is None:
            self.dim_layers = [17, 20, 23, 26]
        self.dim_layers = [int(i) for i in self.dim_layers]
        if self.dim_num_heads is None:
            self.dim_num_heads = max(1, vision_config_of(self).hidden_size // 128)

    def validate_architecture(self):
        """Part of `@strict` validation: the DIM and 729-token contract must be consistent with the vision tower."""
        super().validate_architecture()
        vision = vision_config_of(self)
        grid = vision.image_size // vision.patch_size
        if grid * grid != self.image_seq_length:
            raise ValueError(
                f"image_seq_length={self.image_seq_length} but the vision tower gives {grid}x{grid}={grid * grid} "
                f"tokens per image ({vision.image_size} px, patch {vision.patch_size})"
            )
        if not self.change_mask_loss_weight >= 0:
            raise ValueError(f"change_mask_loss_weight must be >= 0, got {self.change_mask_loss_weight}")
        if self.change_mask_loss_weight > 0 and not self.use_dim:
            raise ValueError("change_mask_loss_weight > 0 needs the DIM (use_dim=True): its head reads the DIM output")
        if not 0 < self.change_mask_min_fraction <= 1:
            raise ValueError(f"change_mask_min_fraction must be in (0, 1], got {self.change_mask_min_fraction}")
        if self.vision_feature_select_strategy != "full":
            raise ValueError("CCExpert needs vision_feature_select_strategy='full' (SigLIP has no CLS token)")
        if not isinstance(self.vision_feature_layer, int):
            raise ValueError("vision_feature_layer must be one int; put the DIM's layers in dim_layers")
        if self.use_dim:
            num_states = vision.num_hidden_layers + 1
            if not self.dim_layers or any(not 0 <= i < num_states for i in self.dim_layers):
                raise ValueError(
                    f"dim_layers={self.dim_layers} must be non-empty absolute indices in [0, {num_states - 1}] "
                    f"(the vision tower has {vision.num_hidden_layers} layers)"
                )
            if self.dim_depth < 1:
                raise ValueError(f"dim_depth must be >= 1, got {self.dim_depth}")
            if vision.hidden_size % self.dim_num_heads or vision.hidden_size % 4:
                raise ValueError(
                    f"vision hidden size {vision.hidden_size} must be divisible by dim_num_heads="
                    f"{self.dim_num_heads} and by 4 (sine position encoding)"
                )


def vision_config_of(config: LlavaOnevisionConfig) -> PreTrainedConfig:
    """The vision tower's config (SigLIP), typed: transformers declares the field `dict | PreTrainedConfig | None`."""
    return _checked(config.vision_config, "vision_config")


def text_config_of(config: LlavaOnevisionConfig) -> PreTrainedConfig:
    """The language model's config (Qwen2), typed: transformers declares the field `dict | PreTrainedConfig | None`."""
    return _checked(config.text_config, "text_config")


def _checked(sub: dict | PreTrainedConfig | None, name: str) -> PreTrainedConfig:
    # LlavaOnevisionConfig.__post_init__ turns a dict or None into a config object (sub_configs_defaults); a field
    # set to something else afterwards would break the model anyway, so it fails here, naming the field
    if not isinstance(sub, PreTrainedConfig):
        raise TypeError(f"{name} must be a transformers config object, got {type(sub).__name__}")
    return sub


AutoConfig.register("ccexpert", CCExpertConfig)

__all__ = ["CCExpertConfig", "text_config_of", "vision_config_of"]
