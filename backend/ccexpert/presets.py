"""Model presets (tiny / demo / 0.5b / 7b) and the locally trained tiny tokenizer.

`tiny` is for tests and the CPU demo: the real architecture (SigLIP at 384 px with patch 14, so still 729 tokens per
image; the full DIM algorithm; Qwen2) at toy widths, with a byte-level BPE tokenizer trained here from a corpus built
in code (no downloads). `0.5b` and `7b` are the shapes of llava-hf/llava-onevision-qwen2-{0.5b,7b}-ov-hf plus the DIM;
build them on the meta device to count parameters, or with random weights to benchmark. `demo` is the architecture of
the shipped demo model (`ccexpert train-demo`): the tiny preset with :data:`DEMO_ARCHITECTURE` on top, at a
CPU-trainable size.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, PreTrainedTokenizerFast

from .configuration_ccexpert import CCExpertConfig, text_config_of
from .model_card import write_model_card

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>")
# Qwen2's pre-tokenisation split, so "\n", words and punctuation tokenise the way they do for Qwen.
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
TINY_VOCAB_SIZE = 1024

QWEN2_IMAGE_TOKEN_ID = 151646  # <image> in the HF-converted LLaVA-OneVision tokenizer
QWEN2_IM_END_ID = 151645
QWEN2_ENDOFTEXT_ID = 151643

# google/siglip-so400m-patch14-384 as LLaVA-OneVision uses it (26 layers, no head)
SIGLIP_SO400M_OV = {
    "model_type": "siglip_vision_model",
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 26,  # OV drops SigLIP's 27th layer; its output was never used (reference §1)
    "num_attention_heads": 16,
    "image_size": 384,
    "patch_size": 14,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
    "vision_use_head": False,
}

PRESETS: dict[str, dict] = {
    "tiny": {
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 32,  # the DIM's attention is O(N^2 D) at N = 729: width is what CPU time scales with
            "intermediate_size": 128,
            "num_hidden_layers": 4,
            "num_attention_heads": 2,
            "image_size": 384,
            "patch_size": 14,
            "vision_use_head": False,
        },
        "text_config": {
            "model_type": "qwen2",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
            "tie_word_embeddings": False,
        },
        "dim_layers": [1, 2, 3, 4],
        "dim_num_heads": 2,
    },
    "0.5b": {
        "vision_config": SIGLIP_SO400M_OV,
        "text_config": {
            "model_type": "qwen2",
            "vocab_size": 152000,
            "hidden_size": 896,
            "intermediate_size": 4864,
            "num_hidden_layers": 24,
            "num_attention_heads": 14,
            "num_key_value_heads": 2,
            "max_position_embeddings": 32768,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True,
        },
        "image_token_index": QWEN2_IMAGE_TOKEN_ID,
    },
    "7b": {
        "vision_config": SIGLIP_SO400M_OV,
        "text_config": {
            "model_type": "qwen2",
            "vocab_size": 152128,
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "max_position_embeddings": 32768,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
        },
        "image_token_index": QWEN2_IMAGE_TOKEN_ID,
    },
}

# The demo model's architecture, as overrides of the tiny preset: SigLIP -> DIM -> projector -> Qwen2 at a size that
# trains on 2 CPU cores (`ccexpert train-demo`; the demo stage configs start from a checkpoint built with these).
DEMO_ARCHITECTURE: dict = {
    # 128 px images with 16 px patches: 64 tokens per image instead of 729. The DIM's attention is O(N^2) and the
    # decoder reads 2N image tokens, so a pair costs ~50x less CPU and the model sees ~50k pairs within the budget.
    "vision_config": {
        "model_type": "siglip_vision_model",
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "image_size": 128,
        "patch_size": 16,
        "vision_use_head": False,
    },
    "image_seq_length": 64,
    "dim_layers": [2, 4],  # two scales keep the multi-scale gated fusion at half the DIM's CPU time
    # From scratch, the caption loss alone teaches the caption prior and the images are ignored (measured: every
    # recipe without it answered "there is no difference" for all pairs). The per-token change-mask loss on the DIM's
    # change stream and on the projected image tokens makes the tokens the decoder reads carry where the scene
    # changed (docs/TRAINING.md, "The demo model").
    "change_mask_loss_weight": 1.0,
}
SUB_CONFIGS = ("text_config", "vision_config")


def _with_sub_configs(spec: dict, overrides: dict) -> dict:
    """``spec`` with ``overrides``; a sub-config given as a dict updates the spec's instead of replacing it
    (replacing dropped the vocabulary and special tokens that the tokenizer sets)."""
    merged = {**spec, **overrides}
    for key in SUB_CONFIGS:
        if isinstance(overrides.get(key), dict):
            merged[key] = {**spec.get(key, {}), **overrides[key]}
    return merged


PRESETS["demo"] = _with_sub_configs(PRESETS["tiny"], DEMO_ARCHITECTURE)
# presets whose vocabulary is the locally trained tiny tokenizer's
TINY_TOKENIZER_PRESETS = ("tiny", "demo")


def preset_config(name: str, tokenizer: PreTrainedTokenizerFast | None = None, **overrides) -> CCExpertConfig:
    """The config of a preset. With a tokenizer, the vocabulary and special-token ids are taken from it."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    # a partial sub-config (e.g. a wider decoder) updates the preset's; the tokenizer fields below win over it
    sub_configs = {key: overrides.pop(key) for key in SUB_CONFIGS if isinstance(overrides.get(key), dict)}
    spec = json.loads(json.dumps(_with_sub_configs(PRESETS[name], sub_configs)))  # deep copy
    text = spec["text_config"]
    if tokenizer is not None:
        # the full presets keep the checkpoint's padded vocabulary; tiny (and demo) use exactly the tokenizer's
        text["vocab_size"] = max(text.get("vocab_size", 0), len(tokenizer))
        spec["image_token_index"] = tokenizer.convert_tokens_to_ids("<image>")
        text["eos_token_id"] = tokenizer.convert_tokens_to_ids("<|im_end|>")
        text["pad_token_id"] = tokenizer.pad_token_id
    elif name in TINY_TOKENIZER_PRESETS:
        text["vocab_size"] = TINY_VOCAB_SIZE
        spec["image_token_index"] = SPECIAL_TOKENS.index("<image>")
    else:
        text["eos_token_id"] = QWEN2_IM_END_ID
        text["pad_token_id"] = QWEN2_ENDOFTEXT_ID
    spec.update(overrides)
    return CCExpertConfig(**spec)


def _tiny_corpus() -> list[str]:
    """Change-caption style sentences, the prompt, and digits/punctuation: enough for a useful small BPE vocabulary."""
    things = [
        "house",
        "houses",
        "building",
        "buildings",
        "road",
        "roads",
        "tree",
        "trees",
        "parking lot",
        "river",
        "lake",
        "pond",
        "field",
        "farmland",
        "bridge",
        "villa",
        "villas",
        "path",
        "forest",
        "grass",
        "car",
        "cars",
        "playground",
        "warehouse",
        "factory",
        "school",
        "street",
        "vegetation",
        "bare land",
        "desert",
        "pool",
    ]
    actions = [
        "has been built",
        "have been built",
        "was built",
        "were built",
        "appears",
        "appear",
        "is removed",
        "are removed",
        "has disappeared",
        "have disappeared",
        "is constructed",
        "are constructed",
        "replaces",
        "is added",
        "are added",
        "has been demolished",
        "is widened",
        "is paved",
    ]
    places = [
        "at the top",
        "at the bottom",
        "on the left",
        "on the right",
        "in the middle",
        "in the center",
        "near the road",
        "beside the river",
        "along the road",
        "in the corner",
        "at the top left",
        "at the bottom right",
        "next to the houses",
        "in the scene",
        "of the image",
        "around the lake",
    ]
    counts = [
        "a",
        "one",
        "two",
        "three",
        "four",
        "several",
        "many",
        "some",
        "a few",
        "a row of",
        "a large",
        "a small",
        "new",
    ]
    sentences = [
        "system\nYou are a helpful assistant.\nuser\nThis is the Image1 . This is the second Image2 .\n"
        "What difference happened from Image1 to Image2?\nassistant\n",
        "There is no difference.",
        "The two scenes seem identical.",
        "The scene is the same as before.",
        "No change has occurred.",
        "Almost nothing has changed.",
        "0123456789 ,.;:!?'\"()-/",
    ]
    for count, thing, action, place in itertools.product(counts, things, actions[:6], places[:6]):
        sentences.append(f"{count.capitalize()} {thing} {action} {place}.")
    for thing, action, place in itertools.product(things, actions, places):
        sentences.append(f"the {thing} {action} {place} .")
    return sentences


def build_tiny_tokenizer(vocab_size: int = TINY_VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Byte-level BPE with the ChatML specials, trained in a second on a corpus built in code (deterministic)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_tiny_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<image>"],
        padding_side="left",
    )


def generation_config_for(config: CCExpertConfig) -> GenerationConfig:
    """Greedy decoding that stops at <|im_end|> (the reference's evaluation setting)."""
    text_config = text_config_of(config)
    return GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=64,
        eos_token_id=text_config.eos_token_id,
        pad_token_id=text_config.pad_token_id,
    )


def build_model(name: str, tokenizer: PreTrainedTokenizerFast | None = None, seed: int = 0, device="cpu", **overrides):
    """A randomly initialised model of a preset (seeded). `device="meta"` allocates nothing."""
    from .modeling_ccexpert import CCExpertForConditionalGeneration

    config = preset_config(name, tokenizer, **overrides)
    torch.manual_seed(seed)
    with torch.device(device):
        model = CCExpertForConditionalGeneration(config)
    model.generation_config = generation_config_for(config)
    return model.eval()


def save_tiny_model(directory: str | Path, seed: int = 0, **overrides) -> Path:
    """Build the tiny preset with a fixed seed and save it (config, safetensors, tokenizer, generation config, card)."""
    directory = Path(directory)
    tokenizer = build_tiny_tokenizer()
    model = build_model("tiny", tokenizer, seed=seed, **overrides)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    write_model_card(directory, model_name="ccexpert-tiny-random", model_version=f"tiny-seed{seed}", demo=True)
    return directory


__all__ = [
    "DEMO_ARCHITECTURE",
    "PRESETS",
    "SPECIAL_TOKENS",
    "build_model",
    "build_tiny_tokenizer",
    "generation_config_for",
    "preset_config",
    "save_tiny_model",
]
