"""The typed reads of a config's vision/text sub-configs (`configuration_ccexpert.vision_config_of` / `text_config_of`,
added so that mypy checks the whole package) and the model's errors where a typed invariant does not hold."""

import pytest
import torch
from ccexpert.configuration_ccexpert import text_config_of, vision_config_of
from ccexpert.presets import build_model, preset_config


def test_the_typed_reads_return_the_config_objects_themselves():
    config = preset_config("tiny")
    assert vision_config_of(config) is config.vision_config
    assert text_config_of(config) is config.text_config
    assert vision_config_of(config).model_type == "siglip_vision_model"
    assert text_config_of(config).model_type == "qwen2"


@pytest.mark.parametrize("field", ["vision_config", "text_config"])
def test_a_sub_config_that_is_no_config_object_is_a_type_error_naming_it(field):
    config = preset_config("tiny")
    setattr(config, field, {"hidden_size": 8})  # __post_init__ converts dicts; a later assignment is not converted
    read = vision_config_of if field == "vision_config" else text_config_of
    with pytest.raises(TypeError, match=f"{field} must be a transformers config object, got dict"):
        read(config)


def test_the_change_mask_loss_without_its_heads_says_what_builds_them():
    model = build_model("tiny", device="meta")  # change_mask_loss_weight = 0: no heads
    assert model.change_mask_head is None
    states = torch.zeros(1, model.config.image_seq_length, 4)
    with pytest.raises(ValueError, match="change_mask_loss_weight > 0"):
        model.change_mask_loss(states, states, torch.zeros(1, model.config.image_seq_length))


def test_a_partial_sub_config_override_keeps_the_tokenizer_fields_and_the_rest_of_the_preset():
    """The demo preset widens the decoder with a partial ``text_config``: the vocabulary and special-token ids must
    still come from the tokenizer (replacing the whole sub-config gave Qwen2's 151,936-word default: 20 M parameters
    of output layer for a 601-word vocabulary), and the keys it does not name keep the preset's values."""
    from ccexpert.presets import PRESETS, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = preset_config(
        "tiny", tokenizer, text_config={"hidden_size": 96}, vision_config={"image_size": 126}, image_seq_length=81
    )
    text, vision = text_config_of(config), vision_config_of(config)
    assert text.hidden_size == 96 and text.vocab_size == len(tokenizer)
    assert text.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert text.num_hidden_layers == PRESETS["tiny"]["text_config"]["num_hidden_layers"]
    assert vision.image_size == 126 and vision.patch_size == PRESETS["tiny"]["vision_config"]["patch_size"]
    demo = preset_config("demo", tokenizer)
    assert text_config_of(demo).vocab_size == len(tokenizer)
    assert text_config_of(demo).hidden_size == PRESETS["demo"]["text_config"]["hidden_size"]
    assert PRESETS["tiny"]["text_config"]["hidden_size"] == 64  # the merge copied, it did not edit the tiny preset
