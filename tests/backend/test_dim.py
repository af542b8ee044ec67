"""The Difference-aware Integration Module against ../shared/reference/ccexpert_model.md §2."""

from __future__ import annotations

import math

import pytest
import torch
from ccexpert.configuration_ccexpert import CCExpertConfig
from ccexpert.modeling_ccexpert import CCExpertDifferenceIntegration, sine_position_encoding
from ccexpert.presets import build_model, build_tiny_tokenizer, preset_config
from ccexpert.processing_ccexpert import CCExpertProcessor
from conftest import make_pair
from huggingface_hub.errors import StrictDataclassClassValidationError

USED_DIM_PARAMETERS = 63_765_505  # reference §2.8, D = 1152, 2 layers, without norm4 and the dead fusion params


def small_config(**overrides) -> CCExpertConfig:
    """A 6x6-token vision grid (84 px, patch 14) so reference-style loops stay fast."""
    vision = {
        "model_type": "siglip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "image_size": 84,
        "patch_size": 14,
        "vision_use_head": False,
    }
    text = {
        "model_type": "qwen2",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "vocab_size": 64,
    }
    kwargs = {
        "vision_config": vision,
        "text_config": text,
        "image_seq_length": 36,
        "dim_layers": [1, 2, 3, 4],
        "dim_num_heads": 2,
        "image_token_index": 3,
    }
    kwargs.update(overrides)
    return CCExpertConfig(**kwargs)


def test_used_parameter_count_at_full_size():
    for preset in ("0.5b", "7b"):
        with torch.device("meta"):
            dim = CCExpertDifferenceIntegration(preset_config(preset))
        assert sum(p.numel() for p in dim.parameters()) == USED_DIM_PARAMETERS
        names = [n for n, _ in dim.named_parameters()]
        assert not any("norm4" in n or "change_for_key_proj" in n or "cross_attn.in_proj" in n for n in names)


def test_full_size_hyper_parameters():
    config = preset_config("0.5b")
    assert config.dim_layers == [17, 20, 23, 26] and config.dim_depth == 2 and config.dim_num_heads == 9
    assert config.image_seq_length == 729 and config.vision_config.num_hidden_layers == 26
    with torch.device("meta"):
        dim = CCExpertDifferenceIntegration(config)
    layer = dim.layers[0]
    assert layer.mlp.fc1.out_features == 4608 and layer.change_self_attn.num_heads == 9
    assert len(dim.layers) == 2 and dim.grid == 27


def test_sine_position_encoding_matches_the_formula():
    grid, dim = 3, 8
    pe = sine_position_encoding(grid, dim)
    assert pe.shape == (grid * grid, dim)
    num_feats = dim // 2
    for i in range(grid):  # row
        for j in range(grid):  # column
            y = (i + 1 - 0.5) / (grid + 1e-6) * 2 * math.pi
            x = (j + 1 - 0.5) / (grid + 1e-6) * 2 * math.pi
            expected = []
            for value in (y, x):
                for k in range(num_feats):
                    angle = value / 10000 ** (2 * (k // 2) / num_feats)
                    expected.append(math.sin(angle) if k % 2 == 0 else math.cos(angle))
            torch.testing.assert_close(pe[i * grid + j], torch.tensor(expected), atol=1e-6, rtol=0)


# -- an independent, literal re-statement of §2 (one scale at a time, eager attention) ------------------------------


def _attention(module, q, k, v, heads):
    def split(x):
        return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

    q, k, v = split(module.q_proj(q)), split(module.k_proj(k)), split(module.v_proj(v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(q.shape[0], -1, heads * q.shape[-1])
    return module.out_proj(out)


def _reference_dim(dim: CCExpertDifferenceIntegration, scales_a: list, scales_b: list, heads: int):
    cfe, gate = dim.change_feature_init, dim.scale_gate
    n, d = scales_a[0].shape[1:]
    pos = sine_position_encoding(int(math.isqrt(n)), d)
    refined = []
    for x_a, x_b in zip(scales_a, scales_b, strict=True):  # every scale with the same weights
        q = None
        for index, layer in enumerate(dim.layers):
            s_a = torch.sigmoid(cfe.mix_proj(torch.cat([x_a, x_b], -1)))
            s_b = torch.sigmoid(cfe.mix_proj(torch.cat([x_b, x_a], -1)))
            c = cfe.delta_proj(torch.cat([x_a * s_a, x_b * s_b, x_a * s_a - x_b * s_b], -1))
            q = c if index == 0 else q + c
            e_a, e_b, e_c = layer.image_a_flag.weight, layer.image_b_flag.weight, layer.change_flag.weight
            q = layer.norm1(q + _attention(layer.change_self_attn, q + pos, q + pos, q, heads))
            keys = torch.cat([x_a + pos + e_a, x_b + pos + e_b, q + pos + e_c], 1)
            q = layer.norm2(
                q + _attention(layer.change_cross_attn, q + pos + e_c, keys, torch.cat([x_a, x_b, q], 1), heads)
            )
            q = layer.norm3(q + layer.mlp.fc2(torch.nn.functional.gelu(layer.mlp.fc1(q))))
            new = []
            for x, e in ((x_a, e_a), (x_b, e_b)):
                query = x + pos + e
                out = _attention(
                    layer.image_cross_attn, query, torch.cat([query, q + pos + e_c], 1), torch.cat([x, q], 1), heads
                )
                new.append(query + out)
            x_a, x_b = new
        refined.append((x_a, x_b, q))
    weights = [torch.sigmoid(gate.fc2(torch.nn.functional.gelu(gate.fc1(torch.cat(r, -1).mean(1))))) for r in refined]
    total = sum(w[:, :, None] for w in weights) + 1e-6
    fused = [sum(w[:, :, None] * r[t] for w, r in zip(weights, refined, strict=True)) / total for t in range(3)]
    return fused[0] + scales_a[-1], fused[1] + scales_b[-1], fused[2]


def test_dim_matches_a_literal_restatement_of_the_reference():
    config = small_config()
    torch.manual_seed(0)
    dim = CCExpertDifferenceIntegration(config).eval()
    for p in dim.parameters():  # non-trivial norms and flags so every term matters
        torch.nn.init.normal_(p, std=0.2)
    scales_a = [torch.randn(3, 36, 32) for _ in range(4)]
    scales_b = [torch.randn(3, 36, 32) for _ in range(4)]
    with torch.no_grad():
        ours = dim(torch.stack(scales_a), torch.stack(scales_b))
        reference = _reference_dim(dim, scales_a, scales_b, heads=2)
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_scales_share_weights_and_have_no_scale_embedding():
    config = small_config()
    torch.manual_seed(1)
    dim = CCExpertDifferenceIntegration(config).eval()
    x_a, x_b = torch.randn(2, 36, 32), torch.randn(2, 36, 32)
    other = [torch.randn(2, 36, 32) for _ in range(4)]
    with torch.no_grad():
        single = dim(x_a[None], x_b[None])
        repeated = dim(x_a[None].repeat(4, 1, 1, 1), x_b[None].repeat(4, 1, 1, 1))
        # permuting the non-final scales leaves the fused result unchanged
        first = dim(torch.stack([other[0], other[1], other[2], x_a]), torch.stack([other[3], other[2], other[1], x_b]))
        second = dim(torch.stack([other[2], other[0], other[1], x_a]), torch.stack([other[1], other[3], other[2], x_b]))
    for s, r in zip(single, repeated, strict=True):
        torch.testing.assert_close(s, r, atol=1e-5, rtol=1e-5)
    for f, s in zip(first, second, strict=True):
        torch.testing.assert_close(f, s, atol=1e-5, rtol=1e-5)
    # one set of weights whatever the number of scales
    assert sum(p.numel() for p in CCExpertDifferenceIntegration(small_config(dim_layers=[4])).parameters()) == sum(
        p.numel() for p in dim.parameters()
    )


def test_before_and_after_are_not_interchangeable():
    torch.manual_seed(2)
    dim = CCExpertDifferenceIntegration(small_config()).eval()
    a, b = torch.randn(4, 1, 36, 32), torch.randn(4, 1, 36, 32)
    with torch.no_grad():
        out_a, out_b, _ = dim(a, b)
        swapped_b, swapped_a, _ = dim(b, a)
    assert not torch.allclose(out_a, swapped_a, atol=1e-4)

    tokenizer = build_tiny_tokenizer()
    processor = CCExpertProcessor(tokenizer)
    model = build_model("tiny", tokenizer, seed=0)
    before, after = make_pair(7)
    with torch.no_grad():
        forward = model(**processor([(before, after)])).logits[:, -1]
        backward = model(**processor([(after, before)])).logits[:, -1]
    assert not torch.allclose(forward, backward, atol=1e-5)


@pytest.mark.parametrize("layers", [[1, 2, 3, 4], [2, 4], [4, 3, 1, 1]])
def test_layer_list_is_honoured(layers):
    config = small_config(dim_layers=layers)
    torch.manual_seed(0)
    from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration

    model = CCExpertForConditionalGeneration(config).eval()
    pixel_values = torch.randn(2, 2, 3, 84, 84)
    seen = {}
    model.model.dim.register_forward_hook(lambda module, args, output: seen.update(args=args))
    with torch.no_grad():
        model.get_image_features(pixel_values)
        states = model.model.vision_tower(pixel_values.flatten(0, 1), output_hidden_states=True).hidden_states
    scales_a, scales_b = seen["args"]
    assert scales_a.shape == (len(layers), 2, 36, 32)
    for s, layer in enumerate(layers):
        torch.testing.assert_close(scales_a[s], states[layer][0::2])  # before images
        torch.testing.assert_close(scales_b[s], states[layer][1::2])  # after images


def test_changing_the_layer_list_changes_the_output():
    torch.manual_seed(0)
    from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration

    first = CCExpertForConditionalGeneration(small_config(dim_layers=[1, 2, 3, 4])).eval()
    second = CCExpertForConditionalGeneration(small_config(dim_layers=[1, 1, 3, 4])).eval()
    second.load_state_dict(first.state_dict())
    pixel_values = torch.randn(1, 2, 3, 84, 84)
    with torch.no_grad():
        assert not torch.allclose(first.get_image_features(pixel_values), second.get_image_features(pixel_values))


def test_config_refuses_layers_outside_the_tower():
    with pytest.raises(StrictDataclassClassValidationError, match="dim_layers"):
        small_config(dim_layers=[1, 5])
    with pytest.raises(StrictDataclassClassValidationError, match="image_seq_length"):
        small_config(image_seq_length=729)
