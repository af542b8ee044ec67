"""DNPO: the loss, the preference collator, and short training runs of the two-image model.

The training runs use the tiny preset at 56 px (16 tokens per image instead of 729) so that two 30-step runs of
policy + reference fit in a few seconds; the model code path is the same as at 384 px.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from ccexpert.presets import PRESETS, build_model, build_tiny_tokenizer
from ccexpert.processing_ccexpert import CCExpertProcessor
from ccexpert_training.dnpo import (
    IGNORE_INDEX,
    DNPOConfig,
    DNPOTrainer,
    PreferenceCollator,
    PreferenceDataset,
    caption_logits,
    dnpo_loss,
    reverse_kl,
    sequence_logprobs,
)
from ccexpert_training.preferences import PreferenceError, PreferencePair
from conftest import make_pair
from PIL import Image
from transformers import TrainingArguments

CHOSEN = "two houses are built at the top."
REJECTED = "two roads are removed at the bottom."
SMALL_IMAGE, SMALL_TOKENS = 56, 16


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def processor(tokenizer):
    return CCExpertProcessor(tokenizer, image_size=SMALL_IMAGE, image_seq_length=SMALL_TOKENS)


def _small_model(tokenizer):
    vision = dict(PRESETS["tiny"]["vision_config"], image_size=SMALL_IMAGE)
    return build_model("tiny", tokenizer, seed=0, vision_config=vision, image_seq_length=SMALL_TOKENS).train()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> list[PreferencePair]:
    folder = tmp_path_factory.mktemp("dnpo_images")
    out = []
    for i in range(4):
        before, after = make_pair(i, 64)
        Image.fromarray(before).save(folder / f"b{i}.png")
        Image.fromarray(after).save(folder / f"a{i}.png")
        out.append(PreferencePair(f"u{i}", folder / f"b{i}.png", folder / f"a{i}.png", CHOSEN, REJECTED, "replacement"))
    return out


def test_collator_stacks_chosen_then_rejected_and_keeps_only_caption_labels(processor, pairs) -> None:
    dataset = PreferenceDataset(pairs)
    batch = PreferenceCollator(processor)([dataset[0], dataset[1]])
    prompt = batch["prompt_length"]
    assert prompt == len(processor.prompt_ids)
    assert batch["input_ids"].shape[0] == 4 and batch["pixel_values"].shape == (4, 2, 3, SMALL_IMAGE, SMALL_IMAGE)
    assert torch.equal(batch["pixel_values"][:2], batch["pixel_values"][2:])
    assert (batch["labels"][:, :prompt] == IGNORE_INDEX).all()
    for row, caption in enumerate([CHOSEN, CHOSEN, REJECTED, REJECTED]):
        kept = batch["labels"][row][batch["labels"][row] != IGNORE_INDEX].tolist()
        assert kept == processor.caption_ids(caption)
        assert torch.equal(batch["input_ids"][row, :prompt], torch.tensor(processor.prompt_ids))  # right padded


def test_loss_is_log2_and_kl_zero_when_policy_equals_reference() -> None:
    torch.manual_seed(0)
    labels = torch.full((4, 9), IGNORE_INDEX)
    labels[:, 5:8] = torch.randint(0, 11, (4, 3))
    batch = {"labels": labels, "prompt_length": 5}
    logits = torch.randn(4, 5, 11)  # positions 4..8 predict tokens 5..9
    loss, parts = dnpo_loss(logits, logits.clone(), batch, DNPOConfig(beta=0.1, kl_lambda=1.0))
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
    assert parts["kl"].item() == pytest.approx(0.0, abs=1e-7)


def test_loss_matches_a_hand_computation() -> None:
    torch.manual_seed(1)
    labels = torch.full((2, 6), IGNORE_INDEX)
    labels[0, 3:6] = torch.tensor([1, 2, 3])
    labels[1, 3:5] = torch.tensor([4, 0])  # shorter rejected caption (padding at the end)
    batch = {"labels": labels, "prompt_length": 3}
    policy, reference = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    config = DNPOConfig(beta=0.5, kl_lambda=0.3)
    loss, parts = dnpo_loss(policy, reference, batch, config)

    def seq(logits, row, tokens):
        return sum(torch.log_softmax(logits[row, t], -1)[tok] for t, tok in enumerate(tokens))

    margin = (seq(policy, 0, [1, 2, 3]) - seq(reference, 0, [1, 2, 3])) - (
        seq(policy, 1, [4, 0]) - seq(reference, 1, [4, 0])
    )
    positions = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    kl = sum(
        (
            torch.softmax(policy[r, t], -1)
            * (torch.log_softmax(policy[r, t], -1) - torch.log_softmax(reference[r, t], -1))
        ).sum()
        for r, t in positions
    ) / len(positions)
    expected = -torch.nn.functional.logsigmoid(config.beta * margin) + config.kl_lambda * kl
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert (
        reverse_kl(
            torch.log_softmax(policy[:, :3], -1),
            torch.log_softmax(reference[:, :3], -1),
            torch.ones(2, 3, dtype=torch.bool),
        )
        >= 0
    )


def test_bad_settings_and_inputs_fail_clearly(pairs) -> None:
    with pytest.raises(ValueError, match="beta"):
        DNPOConfig(beta=0.0)
    with pytest.raises(ValueError, match="kl_lambda"):
        DNPOConfig(kl_lambda=-1.0)
    with pytest.raises(PreferenceError, match="no preference pairs"):
        PreferenceDataset([])
    missing = PreferencePair("gone", Path("/nonexistent/b.png"), pairs[0].after, CHOSEN, REJECTED, "filtered")
    with pytest.raises(PreferenceError, match="'gone', before image"):
        PreferenceDataset([missing])[0]


def test_gradient_accumulation_averages_micro_batches(tokenizer, processor, pairs, tmp_path) -> None:
    """One SGD step on 2 pairs is the same update whether they come as one batch or as 2 accumulated micro-batches
    (the Trainer would otherwise sum the micro-batch losses: batches carry labels and forward takes **kwargs)."""
    deltas = []
    for micro, accumulation in ((2, 1), (1, 2)):
        model = _small_model(tokenizer)
        start = model.lm_head.weight.detach().clone()
        args = TrainingArguments(
            output_dir=str(tmp_path / f"ga{accumulation}"),
            per_device_train_batch_size=micro,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
            learning_rate=1.0,
            optim="sgd",
            max_grad_norm=0.0,
            lr_scheduler_type="constant",
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            seed=0,
            disable_tqdm=True,
            dataloader_drop_last=True,
        )
        trainer = DNPOTrainer(
            model=model,
            dnpo=DNPOConfig(beta=0.5, kl_lambda=0.0),
            args=args,
            train_dataset=PreferenceDataset(pairs[:2]),
            data_collator=PreferenceCollator(processor),
        )
        trainer.train()
        deltas.append(model.lm_head.weight.detach() - start)
    assert deltas[0].abs().max() > 0
    assert torch.allclose(deltas[0], deltas[1], atol=1e-6, rtol=1e-3)


def _margin(model, processor, pairs) -> float:
    """Mean log pi(chosen) - log pi(rejected) over the pairs, in eval mode."""
    batch = PreferenceCollator(processor)([PreferenceDataset(pairs)[i] for i in range(len(pairs))])
    model.eval()
    with torch.no_grad():
        logps, _, _ = sequence_logprobs(caption_logits(model, batch), batch)
    chosen, rejected = logps.chunk(2)
    return (chosen - rejected).mean().item()


def _train(tokenizer, processor, pairs, tmp_path, kl_lambda: float, steps: int = 30):
    model = _small_model(tokenizer)
    args = TrainingArguments(
        output_dir=str(tmp_path / f"out_{kl_lambda}"),
        per_device_train_batch_size=2,
        max_steps=steps,
        learning_rate=3e-3,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = DNPOTrainer(
        model=model,
        dnpo=DNPOConfig(beta=0.02, kl_lambda=kl_lambda),
        args=args,
        train_dataset=PreferenceDataset(pairs),
        data_collator=PreferenceCollator(processor),
    )
    before = _margin(trainer.ref_model, processor, pairs)
    trainer.train()
    kl = [entry["kl"] for entry in trainer.state.log_history if "kl" in entry]
    assert len(kl) == steps
    return before, _margin(model, processor, pairs), kl


def test_dnpo_raises_the_margin_and_the_kl_term_bounds_the_drift(tokenizer, processor, pairs, tmp_path) -> None:
    torch.manual_seed(0)
    before, after_plain, kl_plain = _train(tokenizer, processor, pairs, tmp_path, kl_lambda=0.0)
    _, after_dnpo, kl_dnpo = _train(tokenizer, processor, pairs, tmp_path, kl_lambda=1.0)
    # both raise the chosen-minus-rejected log-probability margin (measured on fresh forward passes)
    assert after_plain > before + 5.0 and after_dnpo > before + 5.0
    # plain DPO (lambda = 0): the KL to the reference keeps growing
    early_plain, late_plain = sum(kl_plain[1:6]) / 5, sum(kl_plain[-5:]) / 5
    assert late_plain > 5 * early_plain
    # DNPO (lambda = 1): the KL stays bounded, an order of magnitude below plain DPO at the end
    late_dnpo = sum(kl_dnpo[-5:]) / 5
    assert max(kl_dnpo) < 0.15
    assert late_dnpo < late_plain / 5


# --------------------------------------------------------------------------------------- through `ccexpert train`


@pytest.fixture(scope="module")
def small_model_dir(tokenizer, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small_sft")
    _small_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_stage4_config_trains_through_ccexpert_train(small_model_dir, tmp_path, capsys, fresh_accelerate_state) -> None:
    """`ccexpert preferences`, then `ccexpert train --config tiny_stage4_dnpo.yaml` (DeepSpeed ZeRO-2, one process)."""
    import json

    from _tinydata import write_tiny_dataset
    from ccexpert.cli import main
    from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration
    from safetensors.torch import load_file

    data = write_tiny_dataset(tmp_path / "data", train=4, val=2, test=2)
    prefs = tmp_path / "prefs.jsonl"
    assert (
        main(
            [
                "preferences",
                "--records",
                str(data / "train.jsonl"),
                "--out",
                str(prefs),
                "--kinds",
                "replacement",
                "--m",
                "1",
            ]
        )
        == 0
    )
    out = tmp_path / "stage4"
    code = main(
        [
            "train",
            "--config",
            "tiny_stage4_dnpo.yaml",
            "--set",
            f"model.init_from={small_model_dir}",
            "--set",
            f"dnpo.preferences={prefs}",
            "--set",
            f"data.val={data / 'val.jsonl'}",
            "--set",
            f"training.output_dir={out}",
            "--set",
            "training.max_steps=3",
            "--set",
            "training.eval_steps=3",
            "--set",
            "training.report_to=[]",
            "--set",
            "batch.global_batch_size=2",
        ]
    )
    assert code == 0, capsys.readouterr().err[-2000:]
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    logged = [entry for entry in state["log_history"] if "kl" in entry]
    assert len(logged) == 3 and all("rewards/margin" in entry and "dpo_loss" in entry for entry in logged)
    assert logged[0]["kl"] == 0.0 and logged[-1]["kl"] > 0.0  # policy == reference at the start, then drifts
    assert logged[-1]["rewards/margin"] > 0.0
    assert any("eval_Sm" in entry for entry in state["log_history"])  # selection on validation S*m, as every stage
    before = load_file(str(small_model_dir / "model.safetensors"))
    after = load_file(str(out / "best" / "model.safetensors"))
    changed = {name.split(".")[1] for name in before if not torch.equal(before[name], after[name])}
    assert "language_model" in changed and "vision_tower" not in changed  # trainable parts of the stage-4 config
    CCExpertForConditionalGeneration.from_pretrained(out / "best")  # a complete checkpoint folder


def test_stage4_config_validation(monkeypatch, tmp_path) -> None:
    from ccexpert_training.train import ConfigError, load_stage_config

    monkeypatch.setenv("CCEXPERT_WORK", str(tmp_path))
    monkeypatch.setenv("CCEXPERT_TINY_DATA", str(tmp_path))
    cfg = load_stage_config("tiny_stage4_dnpo.yaml")
    assert cfg.dnpo.preferences == str(tmp_path / "tiny_preferences.jsonl") and cfg.data.train is None
    for override, message in [
        ({"dnpo.beta": 0}, "overrides: dnpo.beta: expected a positive number, got 0"),
        ({"dnpo.kl_lambda": -0.1}, "overrides: dnpo.kl_lambda: expected a number >= 0, got -0.1"),
        ({"dnpo.beta": "high"}, "overrides: dnpo.beta: expected a positive number, got 'high'"),
        ({"dnpo.preferences": None}, "configs/tiny_stage4_dnpo.yaml: data.train: required"),
        ({"dnpo.gamma": 1.0}, "overrides: dnpo.gamma: unknown key; allowed in 'dnpo'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_stage_config("tiny_stage4_dnpo.yaml", override)


def test_stage4_with_a_missing_preference_file_fails_cleanly(small_model_dir, tmp_path, capsys) -> None:
    from _tinydata import write_tiny_dataset
    from ccexpert.cli import main

    data = write_tiny_dataset(tmp_path / "data", train=2, val=2, test=2)
    code = main(
        [
            "train",
            "--config",
            "tiny_stage4_dnpo.yaml",
            "--set",
            f"model.init_from={small_model_dir}",
            "--set",
            f"dnpo.preferences={tmp_path / 'missing.jsonl'}",
            "--set",
            f"data.val={data / 'val.jsonl'}",
            "--set",
            f"training.output_dir={tmp_path / 'out'}",
            "--set",
            "training.deepspeed=null",
        ]
    )
    assert code == 2
    assert "dnpo.preferences: preference file not found" in capsys.readouterr().err
