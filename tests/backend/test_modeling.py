"""CCExpert model: equivalence with transformers' LLaVA-OneVision when the DIM is off, forward contract, init."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration
from ccexpert.presets import build_model, build_tiny_tokenizer
from ccexpert.processing_ccexpert import CCExpertProcessor
from conftest import make_pair
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutputWithPooling


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def processor(tokenizer):
    return CCExpertProcessor(tokenizer)


def _hf_twin(model: CCExpertForConditionalGeneration) -> LlavaOnevisionForConditionalGeneration:
    """transformers' own LLaVA-OneVision with the same sub-configs and the same weights (strict load)."""
    config = model.config
    hf_config = LlavaOnevisionConfig(
        vision_config=config.vision_config.to_dict(),
        text_config=config.text_config.to_dict(),
        image_token_index=config.image_token_index,
        vision_feature_layer=config.vision_feature_layer,
        vision_feature_select_strategy="full",
    )
    hf = LlavaOnevisionForConditionalGeneration(hf_config).eval()
    hf.load_state_dict(model.state_dict(), strict=True)
    return hf


def test_dim_off_logits_equal_llava_onevision(tokenizer, processor):
    model = build_model("tiny", tokenizer, seed=3, use_dim=False)
    assert model.model.dim is None
    hf = _hf_twin(model)
    batch = processor(
        [make_pair(1), make_pair(2, 80)], captions=["A road is built.", "There is no difference."], padding_side="right"
    )
    batch_size = batch["input_ids"].shape[0]
    with torch.no_grad():
        ours = model(**batch)
        # HF's own multi-image path: base 384 px view of each image, projected, plus one image_newline row each.
        hf_features = hf.model.get_image_features(
            pixel_values=batch["pixel_values"].flatten(0, 1),
            image_sizes=torch.tensor([[384, 384]] * (2 * batch_size)),
            batch_num_images=torch.tensor([2] * batch_size),
        ).pooler_output
        assert all(f.shape[0] == 730 for f in hf_features)
        assert all(torch.equal(f[-1], hf.model.image_newline) for f in hf_features)
        # CCExpert: 729 tokens, no newline
        no_newline = BaseModelOutputWithPooling(pooler_output=[f[:729] for f in hf_features])
        theirs = hf(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=batch["labels"],
            mm_encoder_outputs={"image": no_newline},
        )
    assert ours.logits.dtype == torch.float32
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.loss, theirs.loss, atol=1e-5, rtol=0)


def test_dim_on_changes_the_projector_input(tokenizer, processor):
    with_dim = build_model("tiny", tokenizer, seed=3)
    without = build_model("tiny", tokenizer, seed=3, use_dim=False)
    without.load_state_dict(with_dim.state_dict(), strict=False)
    pixel_values = processor([make_pair(5)])["pixel_values"]
    with torch.no_grad():
        a = with_dim.get_image_features(pixel_values)
        b = without.get_image_features(pixel_values)
    assert a.shape == b.shape == (1, 2, 729, with_dim.config.text_config.hidden_size)
    assert not torch.allclose(a, b)


def test_forward_refuses_wrong_placeholder_count(tokenizer, processor):
    model = build_model("tiny", tokenizer, seed=0)
    batch = processor([make_pair(1)])
    image_id = model.config.image_token_id
    first = (batch["input_ids"][0] == image_id).nonzero()[0].item()
    batch["input_ids"][0, first] = tokenizer.pad_token_id  # 1457 placeholders instead of 1458
    with pytest.raises(ValueError, match="1458 image placeholder"):
        model(**batch)
    batch = processor([make_pair(1)])
    with pytest.raises(ValueError, match="pixel_values must be"):
        model.get_image_features(batch["pixel_values"][:, :1])


def test_training_loss_backpropagates_into_dim(tokenizer, processor):
    model = build_model("tiny", tokenizer, seed=0).train()
    batch = processor([make_pair(1)], captions=["A house is built."], padding_side="right")
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for n, p in model.named_parameters() if n.startswith("model.dim.")]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert model.model.image_newline.grad is None  # never used


def test_dim_initialisation_follows_reference():
    """N(0, 0.02) Linear weights with zero bias, N(0, 0.02) flags, LayerNorm 1/0, no zero-init (reference §2.7)."""
    model = build_model("tiny", seed=0, vision_config={**_tiny_vision(), "hidden_size": 256, "num_attention_heads": 2})
    dim = model.model.dim
    linear_weights = torch.cat([m.weight.flatten() for m in dim.modules() if isinstance(m, torch.nn.Linear)])
    assert abs(linear_weights.std().item() - 0.02) < 1e-3
    assert all(torch.count_nonzero(m.bias) == 0 for m in dim.modules() if isinstance(m, torch.nn.Linear))
    flags = torch.cat([m.weight.flatten() for m in dim.modules() if isinstance(m, torch.nn.Embedding)])
    assert flags.numel() == 2 * 3 * 256 and abs(flags.std().item() - 0.02) < 4e-3
    for norm in (m for m in dim.modules() if isinstance(m, torch.nn.LayerNorm)):
        assert torch.equal(norm.weight, torch.ones_like(norm.weight)) and torch.count_nonzero(norm.bias) == 0


def _tiny_vision() -> dict:
    from ccexpert.presets import PRESETS

    return dict(PRESETS["tiny"]["vision_config"])


def test_change_mask_loss_is_off_by_default_and_adds_a_trained_head_when_on(tokenizer, processor):
    """Weight 0 (default, official checkpoints): no head, no extra parameter, the loss is the caption loss. Weight w:
    loss = caption loss + w * (BCE(head(DIM change stream)) + BCE(token head(projected image tokens))) against
    "patch changed"; its gradient reaches the DIM, the projector and the vision tower, and captions (generation) do
    not depend on the heads."""
    assert build_model("tiny", tokenizer, seed=0).change_mask_head is None
    mask = np.zeros((384, 384), dtype=np.uint8)
    mask[:96, :96] = 1
    batch = processor(
        [make_pair(1), make_pair(2)],
        captions=["A house is built.", "No change."],
        padding_side="right",
        change_masks=[mask, None],
    )
    plain = build_model("tiny", tokenizer, seed=0).train()
    caption_loss = plain(**{k: v for k, v in batch.items() if k != "change_mask"}).loss
    assert torch.allclose(plain(**batch).loss, caption_loss)  # no head: the masks are ignored

    model = build_model("tiny", tokenizer, seed=0, change_mask_loss_weight=0.5).train()
    model.load_state_dict(plain.state_dict(), strict=False)
    assert {n for n, _ in model.named_parameters()} - {n for n, _ in plain.named_parameters()} == {
        "change_mask_head.weight",
        "change_mask_head.bias",
        "change_mask_token_head.weight",
        "change_mask_token_head.bias",
    }
    out = model.model(**{k: v for k, v in batch.items() if k not in ("labels", "change_mask")})
    assert out.change_hidden_states.shape == (2, 729, model.config.vision_config.hidden_size)
    aux = model.change_mask_loss(out.change_hidden_states, out.image_hidden_states, batch["change_mask"])
    loss = model(**batch).loss
    assert aux > 0 and torch.allclose(loss, caption_loss + 0.5 * aux, atol=1e-6)
    # under the Trainer's global token count (num_items_in_batch over all processes / accumulation steps) the aux
    # term takes this batch's share of the tokens, like the caption loss does
    tokens = (batch["labels"][..., 1:] != -100).sum()
    shared = model(**batch, num_items_in_batch=2 * tokens).loss
    half_caption = plain(**{k: v for k, v in batch.items() if k != "change_mask"}, num_items_in_batch=2 * tokens).loss
    assert torch.allclose(shared, half_caption + 0.5 * aux / 2, atol=1e-6)
    # only the sample with a mask counts: the -1 row is skipped
    alone = model.change_mask_loss(out.change_hidden_states[:1], out.image_hidden_states[:1], batch["change_mask"][:1])
    assert torch.allclose(aux, alone, atol=1e-6)
    model.zero_grad()
    model.change_mask_loss(out.change_hidden_states, out.image_hidden_states, batch["change_mask"]).backward()
    assert model.change_mask_head.weight.grad.abs().sum() > 0
    assert model.change_mask_token_head.weight.grad.abs().sum() > 0
    assert model.model.multi_modal_projector.linear_2.weight.grad.abs().sum() > 0
    assert model.model.dim.change_feature_init.delta_proj.weight.grad.abs().sum() > 0
    assert model.model.vision_tower.get_input_embeddings().weight.grad.abs().sum() > 0
    assert model.model.language_model.embed_tokens.weight.grad is None  # the head does not read the LLM
    unknown = torch.full_like(batch["change_mask"], -1.0)
    assert model.change_mask_loss(out.change_hidden_states, out.image_hidden_states, unknown) == 0
    with pytest.raises(ValueError, match=r"change_mask must be \[batch, 729\]"):
        model.change_mask_loss(out.change_hidden_states, out.image_hidden_states, batch["change_mask"][:, :10])
    with torch.no_grad():  # inference: same logits with and without the head
        prompt = processor([make_pair(1)])
        assert torch.equal(model.eval()(**prompt).logits, plain.eval()(**prompt).logits)
    with pytest.raises(StrictDataclassClassValidationError, match="change_mask_loss_weight must be >= 0"):
        build_model("tiny", tokenizer, change_mask_loss_weight=-1.0, device="meta")
    with pytest.raises(StrictDataclassClassValidationError, match="needs the DIM"):
        build_model("tiny", tokenizer, change_mask_loss_weight=1.0, use_dim=False, device="meta")


def test_dim_before_output_is_image_0_and_after_output_is_image_1(tokenizer, processor):
    """Issue 20: the DIM gets the before images as A and the after images as B, its before output reaches the
    projector as image 0 and its after output as image 1, and image 0 fills the first 729 placeholders of the prompt
    (swapping any of these only showed in a slow end-to-end test)."""
    model = build_model("tiny", tokenizer, seed=3)
    batch = processor([make_pair(1), make_pair(2, 80)])  # two different pairs: the batch order is checked too
    seen = {}

    def record_dim(module, args, output):
        seen["dim_in"], seen["dim_out"] = args, output

    def record_projector(module, args, output):
        seen["projector_in"], seen["projector_out"] = args[0], output

    def record_llm(module, args, kwargs):
        seen["embeds"] = kwargs["inputs_embeds"]

    hooks = [
        model.model.dim.register_forward_hook(record_dim),
        model.model.multi_modal_projector.register_forward_hook(record_projector),
        model.model.language_model.register_forward_pre_hook(record_llm, with_kwargs=True),
    ]
    try:
        with torch.no_grad():
            model(**batch)
            before = model.model.vision_tower(batch["pixel_values"][:, 0], output_hidden_states=True).hidden_states
            after = model.model.vision_tower(batch["pixel_values"][:, 1], output_hidden_states=True).hidden_states
    finally:
        for hook in hooks:
            hook.remove()

    scales_a, scales_b = seen["dim_in"]
    layers = model.config.dim_layers
    torch.testing.assert_close(scales_a, torch.stack([before[i] for i in layers]), atol=1e-5, rtol=0)
    torch.testing.assert_close(scales_b, torch.stack([after[i] for i in layers]), atol=1e-5, rtol=0)
    out_a, out_b, _ = seen["dim_out"]
    assert not torch.allclose(out_a, out_b)
    projector_in = seen["projector_in"]  # [B, 2, N, D]
    assert projector_in.shape[:2] == (2, 2)
    assert torch.equal(projector_in[:, 0], out_a) and torch.equal(projector_in[:, 1], out_b)
    # and in that order into the prompt: the first 729 placeholders get image 0, the next 729 image 1
    image_rows = batch["input_ids"] == model.config.image_token_id  # [B, L]
    spliced = seen["embeds"][image_rows].view(2, 2, 729, -1)
    assert torch.equal(spliced, seen["projector_out"])
