"""One-off conversions, kept out of the runtime path (as transformers keeps its convert scripts):

- official CCExpert checkpoints (LLaVA-NeXT layout, reference §9.1) -> our folder layout and key names;
- a LLaVA-OneVision checkpoint in HF format -> a CCExpert with every OV weight and a fresh DIM (stage 1's start).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoTokenizer, LlavaOnevisionForConditionalGeneration

from .checkpoints import CheckpointError, is_local, refuse_pickled_weights
from .configuration_ccexpert import CCExpertConfig, text_config_of, vision_config_of
from .modeling_ccexpert import CCExpertDifferenceIntegration, CCExpertForConditionalGeneration
from .presets import SIGLIP_SO400M_OV, generation_config_for

# Vision towers the official configs name by hub id (the LLaVA config does not carry the tower's shape).
# num_hidden_layers is the OV count (26): the official tower's 27th layer is dropped on conversion.
KNOWN_VISION_TOWERS = {"google/siglip-so400m-patch14-384": SIGLIP_SO400M_OV}

_VISION = r"model\.vision_tower\.vision_tower\.vision_model\."
_ATTN = r"(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)"
_WB = r"(weight|bias)"
DROP = None  # marker: a known official key with no counterpart here

# (official key pattern, our key template or DROP); the first full match wins. Reference §9.1 and §2.
OFFICIAL_KEY_MAP: list[tuple[str, str | None]] = [
    (_VISION + r"(embeddings|encoder|post_layernorm)\.(.+)", r"model.vision_tower.\1.\2"),
    (_VISION + r"head\..+", DROP),  # attention-pooling head (replaced by identity in the reference)
    (r"model\.mm_projector\.0\." + _WB, r"model.multi_modal_projector.linear_1.\1"),
    (r"model\.mm_projector\.2\." + _WB, r"model.multi_modal_projector.linear_2.\1"),
    (r"model\.image_newline", "model.image_newline"),
    (r"model\.(embed_tokens|layers|norm)\.(.+)", r"model.language_model.\1.\2"),
    (r"lm_head\.weight", "lm_head.weight"),
    (r"model\.mm_cc_projector\..+", DROP),  # built but never called
    (
        r"model\.vision_resampler\.expert_change_feature_extractor_model\.linear_mapping\." + _WB,
        r"model.dim.change_feature_init.mix_proj.\1",
    ),
    (
        r"model\.vision_resampler\.expert_change_feature_extractor_model\.proj\." + _WB,
        r"model.dim.change_feature_init.delta_proj.\1",
    ),
    (
        r"model\.vision_resampler\.layers\.(\d+)\.change_self_attn\." + _ATTN,
        r"model.dim.layers.\1.change_self_attn.\2.\3",
    ),
    (
        r"model\.vision_resampler\.layers\.(\d+)\.cross_attn_change_to_imageABC\." + _ATTN,
        r"model.dim.layers.\1.change_cross_attn.\2.\3",
    ),
    (
        r"model\.vision_resampler\.layers\.(\d+)\.cross_attn_imageAB_to_change\." + _ATTN,
        r"model.dim.layers.\1.image_cross_attn.\2.\3",
    ),
    (r"model\.vision_resampler\.layers\.(\d+)\.(norm[123])\." + _WB, r"model.dim.layers.\1.\2.\3"),
    (r"model\.vision_resampler\.layers\.(\d+)\.norm4\." + _WB, DROP),  # unused in the reference forward
    (r"model\.vision_resampler\.layers\.(\d+)\.mlp\.lin([12])\." + _WB, r"model.dim.layers.\1.mlp.fc\2.\3"),
    (
        r"model\.vision_resampler\.layers\.(\d+)\.(image_a|image_b|change)_flag_embed\.weight",
        r"model.dim.layers.\1.\2_flag.weight",
    ),
    (
        r"model\.vision_resampler\.ChangeAwareTokenReduce\.feature_map_level_gate\.0\." + _WB,
        r"model.dim.scale_gate.fc1.\1",
    ),
    (
        r"model\.vision_resampler\.ChangeAwareTokenReduce\.feature_map_level_gate\.2\." + _WB,
        r"model.dim.scale_gate.fc2.\1",
    ),
    (r"model\.vision_resampler\.ChangeAwareTokenReduce\.(change_for_key_proj|cross_attn)\..+", DROP),  # dead
    (r".+\.(position_ids|rotary_emb\.inv_freq)", DROP),  # buffers some library versions saved
]
_COMPILED_MAP = [(re.compile(pattern), target) for pattern, target in OFFICIAL_KEY_MAP]
_OFFICIAL_VISION_LAYER = re.compile(_VISION + r"encoder\.layers\.(\d+)\.")


class UnknownKeysError(CheckpointError):
    def __init__(self, what: str, keys: Iterable[str]):
        self.keys = sorted(keys)
        shown = "\n  ".join(self.keys[:50]) + (f"\n  ... and {len(self.keys) - 50} more" if len(self.keys) > 50 else "")
        super().__init__(f"{what} ({len(self.keys)}):\n  {shown}")


def map_official_key(key: str, last_vision_layer: int) -> str | None:
    """Our name for an official key; None for keys dropped on purpose. Raises KeyError for unknown keys."""
    layer = _OFFICIAL_VISION_LAYER.match(key)
    if layer and int(layer.group(1)) == last_vision_layer:
        return None  # SigLIP layer 27: computed by the reference but its output never used; OV has no such layer
    for pattern, target in _COMPILED_MAP:
        match = pattern.fullmatch(key)
        if match:
            return None if target is DROP else match.expand(target)
    raise KeyError(key)


def map_official_state_dict(keys: Iterable[str], last_vision_layer: int) -> dict[str, str]:
    """{official key: our key} for every kept key; refuses (listing them) keys that match nothing."""
    mapping, unknown = {}, []
    for key in keys:
        try:
            ours = map_official_key(key, last_vision_layer)
        except KeyError:
            unknown.append(key)
            continue
        if ours is not None:
            mapping[key] = ours
    if unknown:
        raise UnknownKeysError("unknown keys in the official checkpoint, not converted", unknown)
    return mapping


def _official_weight_files(src: Path) -> list[Path]:
    index = src / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [src / name for name in shards]
    files = sorted(src.glob("*.safetensors"))
    if files:
        return files
    refuse_pickled_weights(src, "Re-save them as safetensors with a trusted tool first.")
    raise CheckpointError(f"no *.safetensors weights in {src}")


def _decoded(value: object) -> Any:
    """An official config field that is stored either as JSON text or already decoded (a JSON value)."""
    return json.loads(value) if isinstance(value, str) else value


def config_from_official(
    official: dict,
    vision_config: dict,
    embed_rows: int,
    official_vision_layers: int,
    token_ids: dict[str, int],
    dim_num_heads: int | None = None,
) -> CCExpertConfig:
    """Our config from an official `llava_qwen_cc` (or plain `llava_qwen` OV) config.json.

    DIM heads default to the reference's hard-coded width // 128 (9 at D = 1152).
    """
    if official.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
        raise CheckpointError(f"unsupported mm_projector_type {official.get('mm_projector_type')!r} (need mlp2x_gelu)")
    vision = dict(vision_config)
    if vision["num_hidden_layers"] != official_vision_layers - 1:
        raise CheckpointError(
            f"the checkpoint's vision tower has {official_vision_layers} layers; expected the vision config's "
            f"{vision['num_hidden_layers']} + 1 (the last one is dropped)"
        )
    use_dim = "cc_expert" in str(official.get("mm_resampler_type") or "")
    dim: dict[str, Any] = {"use_dim": use_dim}
    if use_dim:
        args: dict[str, Any] = _decoded(official.get("cc_expert_args") or {})
        if int(args.get("downsample_ratio", 1)) != 1:
            raise CheckpointError("cc_expert_args.downsample_ratio != 1 (token reduction) is not supported")
        width: int = vision["hidden_size"]
        if int(args.get("embedding_dim", width)) != width:
            raise CheckpointError("cc_expert_args.embedding_dim differs from the vision width")
        selected: int | list[int] = _decoded(official.get("mm_vision_select_layer", "[-11,-8,-5,-2]"))
        select = [selected] if isinstance(selected, int) else list(selected)
        states = official_vision_layers + 1  # the reference's hidden-state tuple (embeddings + every layer)
        dim_layers = [i % states if i < 0 else i for i in select]
        if max(dim_layers) > vision["num_hidden_layers"]:
            raise CheckpointError(f"mm_vision_select_layer {select} uses the dropped last SigLIP layer")
        dim.update(
            dim_layers=dim_layers,
            dim_num_heads=dim_num_heads or max(1, vision["hidden_size"] // 128),
            dim_depth=int(args.get("per_expert_depth", 2)),
            dim_mlp_ratio=int(args.get("mlp_dim", 4 * vision["hidden_size"])) // vision["hidden_size"],
        )
    rope_theta = float(official.get("rope_theta", (official.get("rope_parameters") or {}).get("rope_theta", 1e6)))
    text = {
        "model_type": "qwen2",
        "vocab_size": embed_rows,
        "hidden_size": official["hidden_size"],
        "intermediate_size": official["intermediate_size"],
        "num_hidden_layers": official["num_hidden_layers"],
        "num_attention_heads": official["num_attention_heads"],
        "num_key_value_heads": official.get("num_key_value_heads", official["num_attention_heads"]),
        "max_position_embeddings": official.get("max_position_embeddings", 32768),
        "rms_norm_eps": official.get("rms_norm_eps", 1e-6),
        "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta},
        "tie_word_embeddings": bool(official.get("tie_word_embeddings", False)),
        "eos_token_id": token_ids["eos"],
        "pad_token_id": token_ids["pad"],
    }
    return CCExpertConfig(
        vision_config=vision, text_config=text, image_token_index=token_ids["image"], vision_feature_layer=-1, **dim
    )


def convert_official_checkpoint(
    src: str | Path,
    dst: str | Path,
    vision_config: dict | None = None,
    dtype: torch.dtype | None = None,
    dim_num_heads: int | None = None,
) -> Path:
    """Official CCExpert folder (LLaVA-NeXT keys, safetensors) -> a CCExpert checkpoint folder in `dst`.

    Drops SigLIP layer 27, `mm_cc_projector` and the DIM's dead parameters; maps projector, LLM and DIM keys; refuses
    (listing them) unknown keys, missing keys and shape mismatches before writing anything.
    """
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not (src / "config.json").is_file():
        raise CheckpointError(f"no config.json in {src}")
    official = json.loads((src / "config.json").read_text())
    files = _official_weight_files(src)

    shapes: dict[str, tuple[int, ...]] = {}
    where: dict[str, Path] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                shapes[key] = tuple(handle.get_slice(key).get_shape())
                where[key] = file
    layers = {int(m.group(1)) for k in shapes if (m := _OFFICIAL_VISION_LAYER.match(k))}
    if not layers:
        raise CheckpointError(f"{src}: no vision tower weights ({_VISION.replace(chr(92), '')}*)")
    official_vision_layers = max(layers) + 1
    mapping = map_official_state_dict(shapes, last_vision_layer=max(layers))

    tokenizer = AutoTokenizer.from_pretrained(str(src))
    if "<image>" not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|endoftext|>"
    token_ids = {
        "image": tokenizer.convert_tokens_to_ids("<image>"),
        "eos": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad": tokenizer.pad_token_id,
    }
    if vision_config is None:
        tower = official.get("mm_vision_tower")
        if tower not in KNOWN_VISION_TOWERS:
            raise CheckpointError(f"unknown vision tower {tower!r}; pass its config (vision_config / --vision-config)")
        vision_config = KNOWN_VISION_TOWERS[tower]
    embed_rows = shapes.get("model.embed_tokens.weight", (0,))[0]
    config = config_from_official(official, vision_config, embed_rows, official_vision_layers, token_ids, dim_num_heads)
    if token_ids["image"] >= embed_rows:
        raise CheckpointError(f"<image> token id {token_ids['image']} is outside the {embed_rows}-row embedding")

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in CCExpertForConditionalGeneration(config).state_dict().items()}
    optional = {"model.image_newline"}  # never used (no image_newline in CCExpert); zeros when absent
    if config.tie_word_embeddings:
        optional.add("lm_head.weight")
    produced = set(mapping.values())
    missing = set(expected) - produced - optional
    unexpected = produced - set(expected)
    if missing:
        raise UnknownKeysError("weights missing from the official checkpoint", missing)
    if unexpected:
        raise UnknownKeysError("converted keys with no place in the CCExpert model", unexpected)
    mismatched = [f"{o} {shapes[o]} -> {k} {expected[k]}" for o, k in mapping.items() if shapes[o] != expected[k]]
    if mismatched:
        raise UnknownKeysError("shape mismatches", mismatched)

    dst.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for official_key, key in mapping.items():
                if where[official_key] == file:
                    tensor = handle.get_tensor(official_key)
                    tensors[key] = tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
    if "model.image_newline" not in tensors:
        tensors["model.image_newline"] = torch.zeros(expected["model.image_newline"])
    if config.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(dst)
    generation_config_for(config).save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    return dst


# --------------------------------------------------------------------------------------------------------------------
# fresh CCExpert from a LLaVA-OneVision checkpoint (training stage 1)


def default_dim_layers(num_layers: int) -> list[int]:
    """The reference's [-10, -7, -4, -1] of the OV tuple ([17, 20, 23, 26] at 26 layers); the last 4 for tiny towers."""
    if num_layers >= 10:
        return [num_layers - 9, num_layers - 6, num_layers - 3, num_layers]
    return list(range(max(1, num_layers - 3), num_layers + 1))


def init_from_llava_onevision(
    source: str | Path,
    dim_layers: list[int] | None = None,
    dim_depth: int = 2,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> CCExpertForConditionalGeneration:
    """CCExpert with every OV weight (HF format, e.g. llava-hf/llava-onevision-qwen2-0.5b-ov-hf) and a fresh DIM.

    The DIM is initialised as the reference's stage 1 effectively was (§2.7): Linear N(0, 0.02) with zero bias,
    flags N(0, 0.02), LayerNorm 1/0; no zero-init.
    """
    if is_local(source) and not Path(source).expanduser().is_dir():
        raise CheckpointError(f"no model at {source}")
    ov = LlavaOnevisionForConditionalGeneration.from_pretrained(str(source), dtype=dtype, use_safetensors=True)
    ov_config = ov.config
    if ov_config.vision_feature_select_strategy != "full" or not isinstance(ov_config.vision_feature_layer, int):
        raise CheckpointError("expected an OV config with vision_feature_select_strategy='full' and one feature layer")
    ov_vision = vision_config_of(ov_config)
    num_layers = ov_vision.num_hidden_layers
    config = CCExpertConfig(
        vision_config=ov_vision.to_dict(),
        text_config=text_config_of(ov_config).to_dict(),
        image_token_index=ov_config.image_token_index,
        projector_hidden_act=ov_config.projector_hidden_act,
        multimodal_projector_bias=ov_config.multimodal_projector_bias,
        vision_feature_layer=ov_config.vision_feature_layer,
        tie_word_embeddings=ov_config.tie_word_embeddings,
        dim_layers=dim_layers or default_dim_layers(num_layers),
        dim_depth=dim_depth,
    )
    with torch.device("meta"):
        model = CCExpertForConditionalGeneration(config)
    result = model.load_state_dict(ov.state_dict(), strict=False, assign=True)
    not_dim = [k for k in result.missing_keys if not k.startswith("model.dim.")]
    if result.unexpected_keys or not_dim:
        raise UnknownKeysError("OV weights that do not fit CCExpert", [*result.unexpected_keys, *not_dim])
    for name, buffer in ov.named_buffers():  # non-persistent buffers (rotary frequencies, position ids)
        if model.get_buffer(name).is_meta:
            module_name, _, buffer_name = name.rpartition(".")
            setattr(model.get_submodule(module_name), buffer_name, buffer.clone())
    torch.manual_seed(seed)
    dim = CCExpertDifferenceIntegration(config).to(dtype)
    dim.apply(model._init_weights)
    model.model.dim = dim
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = generation_config_for(config)
    if model.generation_config.eos_token_id is None:
        model.generation_config = ov.generation_config
    return model.eval()


__all__ = [
    "KNOWN_VISION_TOWERS",
    "OFFICIAL_KEY_MAP",
    "UnknownKeysError",
    "config_from_official",
    "convert_official_checkpoint",
    "default_dim_layers",
    "init_from_llava_onevision",
    "map_official_key",
    "map_official_state_dict",
]
