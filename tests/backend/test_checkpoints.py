"""Checkpoints: safetensors-only loading, official CCExpert conversion and its refusals, init from LLaVA-OneVision."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch
from ccexpert.checkpoints import CheckpointError, load_model
from ccexpert.convert_ccexpert import (
    UnknownKeysError,
    convert_official_checkpoint,
    init_from_llava_onevision,
    map_official_key,
)
from ccexpert.presets import PRESETS, build_model, build_tiny_tokenizer
from ccexpert.processing_ccexpert import CCExpertProcessor
from conftest import make_pair, official_config, official_state_dict, write_official_checkpoint
from safetensors.torch import load_file, save_file
from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

TINY_VISION = PRESETS["tiny"]["vision_config"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def source_model(tokenizer):
    return build_model("tiny", tokenizer, seed=7)


@pytest.fixture(scope="module")
def batch(tokenizer):
    return CCExpertProcessor(tokenizer)([make_pair(1), make_pair(2, 90)])


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


@pytest.fixture(autouse=True)
def _never_unpickle(monkeypatch):
    """Any attempt to unpickle weights fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def test_saved_model_is_safetensors_and_reloads_identically(tiny_model_dir, tokenizer, batch):
    files = sorted(p.name for p in tiny_model_dir.iterdir())
    assert "model.safetensors" in files and "config.json" in files and "generation_config.json" in files
    assert "tokenizer.json" in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl"))]
    loaded = load_model(tiny_model_dir)
    fresh = build_model("tiny", tokenizer, seed=0)  # the fixture's seed
    assert torch.equal(_logits(loaded, batch), _logits(fresh, batch))
    assert loaded.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert json.loads((tiny_model_dir / "config.json").read_text())["model_type"] == "ccexpert"


def test_refuses_missing_folders_pickles_and_foreign_models(tiny_model_dir, tmp_path):
    with pytest.raises(CheckpointError, match="no model at .*nowhere; pass --model"):
        load_model(tmp_path / "nowhere")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(tiny_model_dir / "config.json", pickled / "config.json")
    (pickled / "pytorch_model.bin").write_bytes(b"not even a pickle")
    with pytest.raises(CheckpointError, match=r"only pickled weights \(pytorch_model.bin\)"):
        load_model(pickled)
    foreign = tmp_path / "ov"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"model_type": "llava_onevision"}))
    with pytest.raises(CheckpointError, match="from-llava-onevision"):
        load_model(foreign)


def test_refuses_a_checkpoint_with_missing_weights(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(str(broken / "model.safetensors"))
    weights.pop("model.dim.layers.0.norm2.weight")
    save_file(weights, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"missing_keys.*model\.dim\.layers\.0\.norm2\.weight"):
        load_model(broken)


def test_official_key_mapping_examples():
    assert map_official_key("model.vision_tower.vision_tower.vision_model.encoder.layers.26.mlp.fc1.weight", 26) is None
    assert (
        map_official_key("model.vision_tower.vision_tower.vision_model.encoder.layers.25.mlp.fc1.weight", 26)
        == "model.vision_tower.encoder.layers.25.mlp.fc1.weight"
    )
    assert map_official_key("model.mm_projector.2.bias", 26) == "model.multi_modal_projector.linear_2.bias"
    assert map_official_key("model.layers.3.self_attn.q_proj.weight", 26) == (
        "model.language_model.layers.3.self_attn.q_proj.weight"
    )
    assert map_official_key("model.vision_resampler.layers.1.cross_attn_imageAB_to_change.v_proj.bias", 26) == (
        "model.dim.layers.1.image_cross_attn.v_proj.bias"
    )
    assert map_official_key("model.vision_resampler.layers.1.norm4.weight", 26) is None
    assert map_official_key("model.mm_cc_projector.0.weight", 26) is None
    with pytest.raises(KeyError):
        map_official_key("model.vision_resampler.layers.0.norm5.weight", 26)


def test_convert_round_trip(source_model, tokenizer, batch, tmp_path):
    src = write_official_checkpoint(source_model, tokenizer, tmp_path / "official")
    dst = convert_official_checkpoint(src, tmp_path / "ours", vision_config=TINY_VISION, dim_num_heads=2)
    converted = load_model(dst)
    assert converted.config.dim_layers == source_model.config.dim_layers
    assert converted.config.vision_config.num_hidden_layers == 4  # the extra last layer was dropped
    reference = source_model.state_dict()
    for key, value in converted.state_dict().items():
        assert torch.equal(value, reference[key]), key
    assert torch.equal(_logits(converted, batch), _logits(source_model, batch))
    # and it captions through the normal path
    from ccexpert.engine import CaptionEngine

    assert CaptionEngine.from_pretrained(dst, device="cpu").caption([make_pair(1)], max_new_tokens=3)


def _official_with(model, tokenizer, directory, edit):
    weights = official_state_dict(model)
    edit(weights)
    directory.mkdir()
    save_file({k: v.contiguous() for k, v in weights.items()}, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(official_config(model)))
    tokenizer.save_pretrained(directory)
    return directory


def test_convert_refuses_unknown_keys_listing_them(source_model, tokenizer, tmp_path):
    def add_unknown(weights):
        weights["model.vision_resampler.layers.0.secret_gate.weight"] = torch.zeros(3)
        weights["model.something_else"] = torch.zeros(1)

    src = _official_with(source_model, tokenizer, tmp_path / "src", add_unknown)
    with pytest.raises(UnknownKeysError, match="unknown keys") as error:
        convert_official_checkpoint(src, tmp_path / "dst", vision_config=TINY_VISION, dim_num_heads=2)
    assert error.value.keys == ["model.something_else", "model.vision_resampler.layers.0.secret_gate.weight"]
    assert not (tmp_path / "dst").exists()  # nothing written


def test_convert_refuses_missing_keys_listing_them(source_model, tokenizer, tmp_path):
    def drop(weights):
        del weights["model.vision_resampler.ChangeAwareTokenReduce.feature_map_level_gate.2.bias"]
        del weights["model.norm.weight"]

    src = _official_with(source_model, tokenizer, tmp_path / "src", drop)
    with pytest.raises(UnknownKeysError, match="missing") as error:
        convert_official_checkpoint(src, tmp_path / "dst", vision_config=TINY_VISION, dim_num_heads=2)
    assert error.value.keys == ["model.dim.scale_gate.fc2.bias", "model.language_model.norm.weight"]


def test_convert_refuses_shape_mismatch_and_pickles(source_model, tokenizer, tmp_path):
    def widen(weights):
        weights["model.mm_projector.0.bias"] = torch.zeros(7)

    src = _official_with(source_model, tokenizer, tmp_path / "src", widen)
    with pytest.raises(UnknownKeysError, match="shape mismatches"):
        convert_official_checkpoint(src, tmp_path / "dst", vision_config=TINY_VISION, dim_num_heads=2)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps(official_config(source_model)))
    (pickled / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="only pickled weights"):
        convert_official_checkpoint(pickled, tmp_path / "dst2", vision_config=TINY_VISION, dim_num_heads=2)


def test_convert_refuses_an_unknown_vision_tower_without_its_config(source_model, tokenizer, tmp_path):
    src = write_official_checkpoint(source_model, tokenizer, tmp_path / "official")
    # the so400m default does not fit the tiny tower: refused with the layer counts, before writing
    with pytest.raises(CheckpointError, match="vision tower has 5 layers"):
        convert_official_checkpoint(src, tmp_path / "dst")
    config = json.loads((src / "config.json").read_text())
    config["mm_vision_tower"] = "someone/unknown-tower"
    (src / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unknown vision tower"):
        convert_official_checkpoint(src, tmp_path / "dst")


def test_init_from_llava_onevision_keeps_ov_weights_and_adds_a_fresh_dim(source_model, tokenizer, tmp_path, batch):
    config = source_model.config
    ov_config = LlavaOnevisionConfig(
        vision_config=config.vision_config.to_dict(),
        text_config=config.text_config.to_dict(),
        image_token_index=config.image_token_index,
    )
    torch.manual_seed(5)
    ov = LlavaOnevisionForConditionalGeneration(ov_config).eval()
    ov.save_pretrained(tmp_path / "ov")
    model = init_from_llava_onevision(tmp_path / "ov", seed=0)
    assert model.config.dim_layers == [1, 2, 3, 4] and model.config.use_dim
    ov_state = ov.state_dict()
    ours = model.state_dict()
    assert set(ours) - set(ov_state) == {k for k in ours if k.startswith("model.dim.")}
    for key, value in ov_state.items():
        assert torch.equal(ours[key], value), key
    for name, buffer in model.named_buffers():
        assert not buffer.is_meta, name
    dim_linear = [m for m in model.model.dim.modules() if isinstance(m, torch.nn.Linear)]
    assert all(torch.count_nonzero(m.bias) == 0 for m in dim_linear)
    assert 0.01 < torch.cat([m.weight.flatten() for m in dim_linear]).std().item() < 0.03
    logits = _logits(model, batch)
    assert torch.isfinite(logits).all()
    # the fresh DIM is not a no-op (no zero-init): without it the output differs
    dim, model.model.dim = model.model.dim, None
    baseline = _logits(model, batch)
    model.model.dim = dim
    assert not torch.allclose(baseline, logits)


def _hub_cache(tmp_path, monkeypatch, repo_id: str, files_from) -> None:
    """A Hugging Face cache holding `repo_id` at one commit, as `hf download` leaves it; the hub is unreachable."""
    import huggingface_hub.constants as hub

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(files_from, repo / "snapshots" / commit)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)


def test_hub_id_loads_from_the_hub_cache_like_its_folder(tmp_path, monkeypatch):
    from ccexpert.engine import CaptionEngine
    from ccexpert.paths import default_model_dir

    demo = default_model_dir()  # 128-px inputs, 64 tokens per image: the processor must read the hub copy's config
    _hub_cache(tmp_path, monkeypatch, "acme/ccexpert-demo", demo)
    from_hub, from_folder = CaptionEngine.from_pretrained("acme/ccexpert-demo"), CaptionEngine.from_pretrained(demo)
    assert from_hub.processor.image_size == 128 and from_hub.processor.image_seq_length == 64
    assert from_hub.info()["chip_size"] == 384 and from_hub.info()["model_name"] == from_folder.info()["model_name"]
    pairs = [make_pair(seed, size=256, changed=changed) for seed, changed in ((1, True), (2, False))]
    assert [r.caption for r in from_hub.caption(pairs)] == [r.caption for r in from_folder.caption(pairs)]


def test_hub_id_refusals(tmp_path, monkeypatch, tiny_model_dir):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(tiny_model_dir / "config.json", pickled / "config.json")
    _hub_cache(tmp_path, monkeypatch, "acme/pickled", pickled)
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache.*offline"):
        load_model("acme/absent")
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_model("acme/pickled")
    with pytest.raises(CheckpointError, match="neither a model folder nor a hub id"):
        load_model("not a/valid id!")


# -- the converter's defaults (issue 20): what a user converting the official checkpoint gets without any option ------

# The official CCExpert-0.5B config.json as the reference's scripts leave it (reference §1, §2.1, §3.2): the DIM's
# options are only downsample_ratio and per_expert_depth; heads and MLP width are hard-coded in cc_expert.py.
OFFICIAL_05B_CONFIG = {
    "architectures": ["LlavaQwenCCForCausalLM"],
    "model_type": "llava_qwen_cc",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
    "vocab_size": 151936,
    "mm_hidden_size": 1152,
    "mm_projector_type": "mlp2x_gelu",
    "mm_resampler_type": "cc_expert",
    "cc_expert_args": '{"downsample_ratio": 1, "per_expert_depth": 2}',
    "mm_vision_select_layer": "[-11,-8,-5,-2]",
    "mm_vision_tower": "google/siglip-so400m-patch14-384",
    "image_aspect_ratio": "square",
    "mm_patch_merge_type": "flat",
}


@pytest.mark.parametrize("variant", ["official", "dim_options_omitted"])
def test_converter_defaults_give_the_official_dim(variant):
    """No head count, MLP width, layer list or depth passed: the reference's 9 heads (1152 / 128), MLP 4608, layers
    [17, 20, 23, 26] and depth 2 must come out of the converter's own defaults (reference §2.1, §9.2, §10)."""
    from ccexpert.convert_ccexpert import KNOWN_VISION_TOWERS, config_from_official
    from ccexpert.modeling_ccexpert import CCExpertDifferenceIntegration

    official = dict(OFFICIAL_05B_CONFIG)
    if variant == "dim_options_omitted":  # older configs: every DIM option left to the defaults
        official["cc_expert_args"] = {}
        del official["mm_vision_select_layer"]
    token_ids = {"image": 151646, "eos": 151645, "pad": 151643}
    vision = KNOWN_VISION_TOWERS[official["mm_vision_tower"]]
    assert vision["hidden_size"] == 1152 and vision["num_hidden_layers"] == 26  # SigLIP-so400m as OV keeps it
    config = config_from_official(official, vision, 152000, 27, token_ids)  # 27: the official tower's layer count
    assert config.use_dim
    assert config.dim_num_heads == 9
    assert config.dim_mlp_ratio * config.vision_config.hidden_size == 4608
    assert config.dim_layers == [17, 20, 23, 26]
    assert config.dim_depth == 2
    assert config.vision_feature_layer == -1 and config.image_seq_length == 729
    with torch.device("meta"):
        dim = CCExpertDifferenceIntegration(config)
    assert len(dim.layers) == 2 and dim.grid == 27
    for layer in dim.layers:
        assert layer.mlp.fc1.out_features == 4608
        for attention in (layer.change_self_attn, layer.change_cross_attn, layer.image_cross_attn):
            assert attention.num_heads == 9
    assert sum(p.numel() for p in dim.parameters()) == 63_765_505  # reference §2.8, the used DIM parameters


def test_convert_without_a_head_count_uses_width_over_128(tokenizer, tmp_path):
    """End to end through `convert_official_checkpoint` with no `dim_num_heads`: a 256-wide tower has 2 heads of
    128 in the reference; a wrong default (same weight shapes, other head split) would change the logits."""
    vision = {**TINY_VISION, "hidden_size": 256, "intermediate_size": 256, "num_attention_heads": 2}
    source = build_model("tiny", tokenizer, seed=3, vision_config=vision, dim_num_heads=2)
    src = write_official_checkpoint(source, tokenizer, tmp_path / "official")
    dst = convert_official_checkpoint(src, tmp_path / "ours", vision_config=vision)
    converted = load_model(dst)
    assert converted.config.dim_num_heads == 2
    assert converted.config.dim_mlp_ratio == 4 and converted.config.dim_depth == source.config.dim_depth
    batch = CCExpertProcessor(tokenizer)([make_pair(5)])
    assert torch.equal(_logits(converted, batch), _logits(source, batch))


def test_pickled_weights_are_refused_by_one_rule(tmp_path):
    """The loader and the converter share one refusal: every pickled file named, sorted, with the caller's remedy."""
    from ccexpert.checkpoints import refuse_pickled_weights

    refuse_pickled_weights(tmp_path, "unused")  # nothing pickled: no error
    (tmp_path / "model.safetensors").write_bytes(b"x")
    refuse_pickled_weights(tmp_path, "unused")
    for name in ("z.pt", "a.pkl", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"only pickled weights \(a\.pkl, z\.pt\);.* runs code\. Do X\.$"):
        refuse_pickled_weights(tmp_path, "Do X.")
