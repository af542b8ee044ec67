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
