"""Shared fixtures: the tiny CCExpert checkpoint (built once per session) and deterministic image pairs."""

from __future__ import annotations

import numpy as np
import pytest

TINY_SEED = 0


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny CCExpert checkpoint folder (config.json, model.safetensors, tokenizer, generation_config.json).

    Built from the `tiny` preset with a fixed seed (random weights: captions are gibberish but deterministic).
    Read-only for tests: copy it before modifying.
    """
    from ccexpert.presets import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny_ccexpert") / "model", seed=TINY_SEED)


def make_pair(seed: int, size: int = 64, changed: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic before/after pair of HxWx3 uint8 images; `changed` paints a bright square on the after image."""
    rng = np.random.default_rng(seed)
    before = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    after = before.copy()
    if changed:
        corner = size // 4
        after[corner : corner + size // 3, corner : corner + size // 3] = (250, 240, 30)
    return before, after


@pytest.fixture
def image_pairs():
    """Four deterministic pairs of different sizes (the processor resizes them to 384)."""
    return [make_pair(1, 64), make_pair(2, 96, changed=False), make_pair(3, 256), make_pair(4, 50)]


# -- an official CCExpert checkpoint (LLaVA-NeXT key layout, reference §9.1) built from a tiny model -------------------

_OFFICIAL_DIM_NAMES = [  # (our name, official name) inside the DIM, from the reference's cc_expert.py layout
    ("change_feature_init.mix_proj.", "expert_change_feature_extractor_model.linear_mapping."),
    ("change_feature_init.delta_proj.", "expert_change_feature_extractor_model.proj."),
    (".change_cross_attn.", ".cross_attn_change_to_imageABC."),
    (".image_cross_attn.", ".cross_attn_imageAB_to_change."),
    (".mlp.fc1.", ".mlp.lin1."),
    (".mlp.fc2.", ".mlp.lin2."),
    (".image_a_flag.", ".image_a_flag_embed."),
    (".image_b_flag.", ".image_b_flag_embed."),
    (".change_flag.", ".change_flag_embed."),
    ("scale_gate.fc1.", "ChangeAwareTokenReduce.feature_map_level_gate.0."),
    ("scale_gate.fc2.", "ChangeAwareTokenReduce.feature_map_level_gate.2."),
]


def official_state_dict(model) -> dict:
    """The state dict the reference code would save for `model`, including the parts it keeps but never uses:
    a 27th (here: extra last) SigLIP layer, norm4, the dead fusion parameters and `mm_cc_projector`."""
    import torch

    official = {}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key, value in state.items():
        if key.startswith("model.vision_tower."):
            official["model.vision_tower.vision_tower.vision_model." + key.removeprefix("model.vision_tower.")] = value
        elif key.startswith("model.multi_modal_projector."):
            index = "0" if ".linear_1." in key else "2"
            official[f"model.mm_projector.{index}.{key.rsplit('.', 1)[1]}"] = value
        elif key.startswith("model.language_model."):
            official["model." + key.removeprefix("model.language_model.")] = value
        elif key.startswith("model.dim."):
            name = key.removeprefix("model.dim.")
            for ours, theirs in _OFFICIAL_DIM_NAMES:
                name = name.replace(ours, theirs)
            official["model.vision_resampler." + name] = value
        else:  # lm_head.weight, model.image_newline
            official[key] = value
    vision = model.config.vision_config
    dim, layers = vision.hidden_size, vision.num_hidden_layers
    prefix = "model.vision_tower.vision_tower.vision_model.encoder.layers."
    for key in [k for k in official if k.startswith(f"{prefix}{layers - 1}.")]:
        official[f"{prefix}{layers}." + key.removeprefix(f"{prefix}{layers - 1}.")] = torch.randn_like(official[key])
    for layer in range(model.config.dim_depth):
        official[f"model.vision_resampler.layers.{layer}.norm4.weight"] = torch.ones(dim)
        official[f"model.vision_resampler.layers.{layer}.norm4.bias"] = torch.zeros(dim)
    dead = "model.vision_resampler.ChangeAwareTokenReduce."
    official[dead + "change_for_key_proj.weight"] = torch.randn(dim, dim)
    official[dead + "change_for_key_proj.bias"] = torch.randn(dim)
    official[dead + "cross_attn.in_proj_weight"] = torch.randn(3 * dim, dim)
    official[dead + "cross_attn.in_proj_bias"] = torch.randn(3 * dim)
    official[dead + "cross_attn.out_proj.weight"] = torch.randn(dim, dim)
    official[dead + "cross_attn.out_proj.bias"] = torch.randn(dim)
    hidden = model.config.text_config.hidden_size
    official["model.mm_cc_projector.0.weight"] = torch.randn(hidden, dim)
    official["model.mm_cc_projector.0.bias"] = torch.randn(hidden)
    official["model.mm_cc_projector.2.weight"] = torch.randn(hidden, hidden)
    official["model.mm_cc_projector.2.bias"] = torch.randn(hidden)
    return official


def official_config(model) -> dict:
    """An official `llava_qwen_cc` config.json for `model` (Qwen2 fields at the top level, LLaVA mm_* fields)."""
    text, vision = model.config.text_config, model.config.vision_config
    states = vision.num_hidden_layers + 2  # the official tower has one more layer; tuple = embeddings + layers
    return {
        "architectures": ["LlavaQwenCCForCausalLM"],
        "model_type": "llava_qwen_cc",
        "hidden_size": text.hidden_size,
        "intermediate_size": text.intermediate_size,
        "num_hidden_layers": text.num_hidden_layers,
        "num_attention_heads": text.num_attention_heads,
        "num_key_value_heads": text.num_key_value_heads,
        "max_position_embeddings": text.max_position_embeddings,
        "rms_norm_eps": text.rms_norm_eps,
        "rope_theta": text.rope_parameters["rope_theta"],
        "tie_word_embeddings": False,
        "vocab_size": text.vocab_size,
        "mm_hidden_size": vision.hidden_size,
        "mm_projector_type": "mlp2x_gelu",
        "mm_resampler_type": "cc_expert",
        "cc_expert_args": {"downsample_ratio": 1, "per_expert_depth": model.config.dim_depth},
        "mm_vision_select_layer": str([i - states for i in model.config.dim_layers]),
        "mm_vision_tower": "google/siglip-so400m-patch14-384",
        "image_aspect_ratio": "square",
        "mm_patch_merge_type": "flat",
    }


def write_official_checkpoint(model, tokenizer, directory):
    """Save `model` the way the reference code would (safetensors), with its config and a tokenizer."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in official_state_dict(model).items()}, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(official_config(model)))
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps process-wide singletons; a stage run with DeepSpeed must not inherit a non-DeepSpeed one
    left by an earlier Trainer in this pytest process."""
    from accelerate.state import AcceleratorState, PartialState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    PartialState._reset_state()
