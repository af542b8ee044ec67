"""The optional RSICCLLM difference-aware branch: switch, shapes, gradients, checkpoint compatibility."""

from __future__ import annotations

import torch
from ccexpert.configuration_ccexpert import CCExpertConfig
from ccexpert.modeling_ccexpert import (
    CCExpertForConditionalGeneration,
    DifferenceBranch,
    texture_difference,
    texture_operators,
)
from ccexpert.presets import build_model
from ccexpert.processing_ccexpert import CCExpertProcessor
from safetensors import safe_open


def _load(directory, **overrides):
    """from_pretrained with an explicit config (overrides such as diff_branch=True), returning the loading info."""
    config = CCExpertConfig.from_pretrained(directory, **overrides)
    return CCExpertForConditionalGeneration.from_pretrained(directory, config=config, output_loading_info=True)


def _checkpoint_keys(directory) -> set[str]:
    with safe_open(str(directory / "model.safetensors"), "pt") as handle:
        return set(handle.keys())


def _batch(tiny_model_dir, image_pairs):
    processor = CCExpertProcessor.from_pretrained(tiny_model_dir)
    return processor(image_pairs[:2], ["Two houses are built.", "There is no difference."], padding_side="right")


def test_operators_are_fixed_and_zero_sum_except_plain() -> None:
    kernels = texture_operators()
    assert kernels.shape == (8, 1, 3, 3)
    assert torch.isclose(kernels[0].sum(), torch.tensor(1.0))
    assert torch.allclose(kernels[1:].sum(dim=(1, 2, 3)), torch.zeros(7))
    assert len({tuple(k.flatten().tolist()) for k in kernels}) == 8


def test_texture_difference_is_bounded_zero_without_change_and_local() -> None:
    torch.manual_seed(0)
    before = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(texture_difference(before, before), torch.zeros(2, 8, 32, 32))
    after = before.clone()
    after[:, :, 8:12, 8:12] = 1.0
    diff = texture_difference(before, after)
    assert diff.abs().max() <= 1.0
    changed = diff.abs().sum(dim=(0, 1)) > 0
    assert changed[7:13, 7:13].any() and not changed[20:, 20:].any()  # 3x3 operators: the change stays local


def test_switch_off_keeps_official_keys_and_loads_cleanly(tiny_model_dir) -> None:
    model, info = _load(tiny_model_dir)
    assert model.config.diff_branch is False and model.model.diff_branch is None
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    assert set(model.state_dict()) == _checkpoint_keys(tiny_model_dir)
    assert not any("diff_branch" in k for k in model.state_dict())


def test_switch_on_adds_only_branch_parameters_and_starts_as_a_no_op(tiny_model_dir, image_pairs) -> None:
    base = _load(tiny_model_dir)[0].eval()
    model, info = _load(tiny_model_dir, diff_branch=True)
    model.eval()
    new_keys = set(model.state_dict()) - set(base.state_dict())
    assert new_keys and all(k.startswith("model.diff_branch.") for k in new_keys)
    assert set(info["missing_keys"]) == new_keys and not info["unexpected_keys"]
    branch = model.model.diff_branch
    assert isinstance(branch, DifferenceBranch)
    assert torch.count_nonzero(branch.gate_before) == 0 and torch.count_nonzero(branch.gate_after) == 0
    assert branch.pixel_embed.weight.std() > 0  # the rest is initialised (normal 0.02), not left empty
    dim = model.config.vision_config.hidden_size
    patch = model.config.vision_config.patch_size
    expected = (3 + 8) * patch * patch * dim + 2 * dim + 2 * 2 * dim + 4 * (dim * dim + dim) + 2 * dim
    assert sum(p.numel() for p in branch.parameters()) == expected
    batch = _batch(tiny_model_dir, image_pairs)
    with torch.no_grad():
        features = model.get_image_features(batch["pixel_values"])
        assert features.shape == base.get_image_features(batch["pixel_values"]).shape
        assert torch.allclose(model(**batch).logits, base(**batch).logits, atol=1e-6)


def test_gradients_reach_gates_first_then_the_whole_branch(tiny_model_dir, image_pairs) -> None:
    model = _load(tiny_model_dir, diff_branch=True)[0].train()
    branch = model.model.diff_branch
    batch = _batch(tiny_model_dir, image_pairs)
    model(**batch).loss.backward()
    assert branch.gate_before.grad.abs().sum() > 0 and branch.gate_after.grad.abs().sum() > 0
    inner = [p for n, p in branch.named_parameters() if not n.startswith("gate")]
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in inner)  # zero gates block the rest

    model.zero_grad()
    with torch.no_grad():
        branch.gate_before.fill_(0.5)
        branch.gate_after.fill_(0.5)
    out = model(**batch)
    out.loss.backward()
    for name, param in branch.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # the added term changes the projected image tokens
    with torch.no_grad():
        on = model.get_image_features(batch["pixel_values"])
        branch.gate_before.zero_()
        branch.gate_after.zero_()
        off = model.get_image_features(batch["pixel_values"])
    assert not torch.allclose(on, off)


def test_trained_branch_round_trips_through_save_pretrained(tmp_path, tiny_model_dir) -> None:
    model = build_model("tiny", CCExpertProcessor.from_pretrained(tiny_model_dir).tokenizer, diff_branch=True)
    with torch.no_grad():
        model.model.diff_branch.gate_after.fill_(0.25)
    model.save_pretrained(tmp_path / "m")
    loaded, info = _load(tmp_path / "m")
    assert loaded.config.diff_branch is True and not info["missing_keys"]
    assert torch.all(loaded.model.diff_branch.gate_after == 0.25)  # loaded gates are not re-zeroed by the init
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
