"""Stage configs, trainable parameter sets, optimizer groups and validation-based checkpoint selection (in process,
without DeepSpeed; the DeepSpeed path is tests/training/test_train_deepspeed.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from ccexpert_training import train
from ccexpert_training.stage import evaluate
from ccexpert_training.stage.schema import ModelSection
from ccexpert_training.train import (
    ConfigError,
    apply_trainable,
    load_deepspeed_config,
    load_stage_config,
    param_groups,
    resolve_init,
    run_stage,
)
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from _tinydata import write_tiny_dataset


@pytest.fixture(scope="module")
def tiny():
    from ccexpert.presets import build_model, build_tiny_tokenizer

    return build_model("tiny", build_tiny_tokenizer(), seed=0)


def _names(model, *prefixes):
    return sorted(n for n, _ in model.named_parameters() if n.startswith(prefixes))


def test_stage1_trains_exactly_dim_and_projector(tiny):
    names = apply_trainable(tiny, load_stage_config("stage1.yaml", _dummy_paths()).trainable)
    assert names == _names(tiny, "model.dim.", "model.multi_modal_projector.")
    modules = (tiny.model.dim, tiny.model.multi_modal_projector)
    assert sum(p.numel() for p in tiny.parameters() if p.requires_grad) == sum(
        p.numel() for m in modules for p in m.parameters()
    )
    assert not any(
        p.requires_grad
        for n, p in tiny.named_parameters()
        if n.startswith(("model.vision_tower.", "model.language_model.", "lm_head."))
    )


def test_stage2_and_3_train_everything_used(tiny):
    for stage in ("stage2.yaml", "stage3.yaml"):
        names = apply_trainable(tiny, load_stage_config(stage, _dummy_paths()).trainable)
        everything = _names(tiny, "")
        unused = [n for n in everything if n == "model.image_newline" or ".post_layernorm." in n]
        assert len(unused) == 3  # image_newline + SigLIP post-layernorm weight and bias
        assert names == sorted(set(everything) - set(unused))


def test_trainable_parameters_all_receive_gradients(tiny):
    """The frozen 'unused' list is right: every trainable tensor gets a gradient, the unused ones none."""
    from ccexpert.processing_ccexpert import CCExpertProcessor

    apply_trainable(tiny, ["vision_tower", "dim", "projector", "language_model"])
    from ccexpert.presets import build_tiny_tokenizer

    processor = CCExpertProcessor(build_tiny_tokenizer())
    image = torch.randint(0, 255, (16, 16, 3), dtype=torch.uint8).numpy()
    batch = processor([(image, image)], captions=["A road is built."])
    tiny.train()
    tiny.zero_grad()
    tiny(**batch).loss.backward()
    missing = [n for n, p in tiny.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert missing == []
    tiny.eval()


def test_baseline_has_no_dim_and_trains_vision_projector_llm():
    from ccexpert.presets import build_model, build_tiny_tokenizer

    model = build_model("tiny", build_tiny_tokenizer(), use_dim=False)
    cfg = load_stage_config("baseline_ov.yaml", _dummy_paths())
    assert cfg.model.use_dim is False
    names = apply_trainable(model, cfg.trainable)
    assert not _names(model, "model.dim.")
    expected = [
        n
        for n in _names(
            model, "model.vision_tower.", "model.multi_modal_projector.", "model.language_model.", "lm_head."
        )
        if ".post_layernorm." not in n
    ]
    assert names == expected
    with pytest.raises(ConfigError, match="trainable parts \\['dim'\\] do not exist"):
        apply_trainable(model, ["dim"])


def test_param_groups_vision_at_0_2x(tiny):
    cfg = load_stage_config("stage2.yaml", _dummy_paths())
    apply_trainable(tiny, cfg.trainable)
    groups = param_groups(tiny, cfg.optim.learning_rate, cfg.optim.lr_scale, 0.0)
    assert [(g["name"], g["lr"]) for g in groups] == [
        ("dim+language_model+projector", 1e-5),
        ("vision_tower@x0.2", pytest.approx(2e-6)),
    ]
    vision = [n for n in _names(tiny, "model.vision_tower.") if ".post_layernorm." not in n]
    assert sorted(groups[1]["param_names"]) == vision
    assert all(g["weight_decay"] == 0.0 for g in groups)


def _dummy_paths(tmp: Path | None = None) -> dict:
    base = tmp or Path("/nonexistent")
    return {
        "model.init_from": str(base / "init"),
        "data.train": str(base / "t.jsonl"),
        "data.val": str(base / "v.jsonl"),
        "data.test": str(base / "test.jsonl"),
        "training.output_dir": str(base / "out"),
    }


def test_paper_values_in_stage_configs():
    s1, s2, s3 = (load_stage_config(f"stage{i}.yaml", _dummy_paths()) for i in (1, 2, 3))
    assert (s1.batch.global_batch_size, s2.batch.global_batch_size, s3.batch.global_batch_size) == (64, 256, 256)
    assert s1.optim.learning_rate == s2.optim.learning_rate == 1e-5
    assert s1.optim.lr_scale == {} and s2.optim.lr_scale == {"vision_tower": 0.2}
    assert (s1.data.caption_mode, s2.data.caption_mode, s3.data.caption_mode) == ("flatten", "flatten", "random_choice")
    assert s3.training.num_train_epochs == 50 and s3.training.eval_steps == "epoch"
    for cfg in (s1, s2, s3):
        assert cfg.optim.warmup_ratio == 0.03 and cfg.optim.weight_decay == 0.0
        assert cfg.optim.max_grad_norm == 1.0 and cfg.optim.lr_scheduler_type == "cosine"
        assert Path(cfg.training.deepspeed).name == "ds_zero2.json"
    assert load_deepspeed_config(train.CONFIG_DIR / "ds_zero3.json")["zero_optimization"]["stage"] == 3


def test_stage_configs_chain_through_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CCEXPERT_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("CCEXPERT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CCEXPERT_BASE_MODEL", "lmms-lab/some-ov-hf")
    s1 = load_stage_config("stage1.yaml")
    s2 = load_stage_config("stage2.yaml")
    s3 = load_stage_config("stage3.yaml")
    assert s1.model.init_from == "lmms-lab/some-ov-hf"  # hub ids stay as they are
    assert s2.model.init_from == str(tmp_path / "work" / "stage1")
    assert s3.model.init_from == str(tmp_path / "work" / "stage2")
    assert s3.data.val == str(tmp_path / "data" / "levircc" / "val.jsonl")
    assert s3.data.test == str(tmp_path / "data" / "levircc" / "test.jsonl")
    monkeypatch.delenv("CCEXPERT_DATA")
    with pytest.raises(ConfigError, match="CCEXPERT_DATA"):
        load_stage_config("stage3.yaml")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"data.val": None}, "overrides: data.val: required"),
        ({"model.preset": "tiny"}, "overrides: model.init_from: set exactly one of model.init_from"),
        (
            {"trainable": ["vision"]},
            r"overrides: trainable: expected a non-empty list of parts from \[.*\], got \['vision'\]",
        ),
        ({"optim.lr_scale": {"vit": 0.2}}, "overrides: optim.lr_scale.vit: unknown part 'vit'"),
        ({"optim.learning_rate": "fast"}, "overrides: optim.learning_rate: expected a positive number, got 'fast'"),
        ({"training.eval_stepz": 3}, "overrides: training.eval_stepz: unknown key; allowed in 'training'"),
        ({"data.caption_mode": "all"}, "overrides: data.caption_mode: expected flatten or random_choice, got 'all'"),
        ({"batch.global_batch_size": 0}, "overrides: batch.global_batch_size: expected a positive integer, got 0"),
        ({"data.cache_images": "yes"}, "overrides: data.cache_images: expected true or false, got 'yes'"),
    ],
)
def test_bad_configs(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_stage_config("stage1.yaml", {**_dummy_paths(), **overrides})


def test_deepspeed_optimizer_block_is_refused(tmp_path):
    bad = json.loads((train.CONFIG_DIR / "ds_zero2.json").read_text())
    bad["optimizer"] = {"type": "AdamW", "params": {"lr": "auto"}}
    (tmp_path / "ds.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="remove the 'optimizer' block.*single learning rate"):
        load_stage_config("stage2.yaml", {**_dummy_paths(), "training.deepspeed": str(tmp_path / "ds.json")})


def test_resolve_init_uses_best_and_refuses_unfinished_stage(tmp_path):
    stage = tmp_path / "stage1"
    (stage / "best").mkdir(parents=True)
    (stage / "best" / "config.json").write_text("{}")
    (stage / "checkpoint-9").mkdir()
    (stage / "best_checkpoint.json").write_text(json.dumps({"best_dir": "best", "checkpoint": "checkpoint-3"}))
    assert resolve_init(str(stage)) == str(stage / "best")
    unfinished = tmp_path / "stage2"
    (unfinished / "checkpoint-4").mkdir(parents=True)
    with pytest.raises(ConfigError, match="neither a checkpoint folder"):
        resolve_init(str(unfinished))


class _FakeGeneration:
    """Stands in for greedy generation: validation quality 'bad, perfect, bad' over the three evaluations."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def __call__(self, model, processor, records, batch_size, max_new_tokens, distributed):
        from ccexpert_training.records import Prediction

        split = records[0].uid.split("_")[0]
        self.calls.append((split, len(records)))
        good = split == "val" and sum(1 for s, _ in self.calls if s == "val") == 2
        return [Prediction(r.uid, r.captions[0] if good else "zzz qqq", r.captions) for r in records]


def test_selection_on_validation_best_exported_test_scored_once(tmp_path, monkeypatch):
    data = write_tiny_dataset(tmp_path / "data", train=4, val=2, test=2)
    fake = _FakeGeneration()
    monkeypatch.setattr(evaluate, "generate_predictions", fake)  # looked up at call time by the trainer and the test
    out = tmp_path / "s1"
    overrides = {
        "model.init_from": None,
        "model.preset": "tiny",
        "data.train": str(data / "train.jsonl"),
        "data.val": str(data / "val.jsonl"),
        "data.test": str(data / "test.jsonl"),
        "training.output_dir": str(out),
        "training.deepspeed": None,
        "training.max_steps": 6,
        "training.eval_steps": 2,
        "training.report_to": [],
        "training.dataloader_num_workers": 0,
        "training.gradient_checkpointing": False,
        "batch.global_batch_size": 1,
        "batch.per_device_train_batch_size": 1,
        "optim.learning_rate": 1e-3,
    }
    best = run_stage("tiny_stage1.yaml", overrides)
    assert fake.calls == [("val", 2), ("val", 2), ("val", 2), ("test", 2)]  # test only once, at the end
    pointer = json.loads((out / "best_checkpoint.json").read_text())
    assert pointer["checkpoint"] == "checkpoint-4" and pointer["selected_on"] == str(data / "val.jsonl")
    assert best == out / "best"
    best_weights = load_file(best / "model.safetensors")
    for name, tensor in load_file(out / "checkpoint-4" / "model.safetensors").items():
        assert torch.equal(tensor, best_weights[name])
    last = load_file(out / "checkpoint-6" / "model.safetensors")
    assert any(not torch.equal(last[n], best_weights[n]) for n in best_weights)  # best is not the last
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["checkpoint"] == str(best) and metrics["overall"]["n"] == 2
    # the next stage starts from this BEST checkpoint
    assert resolve_init(str(out)) == str(best)
    # re-running into the same output_dir without --resume is refused
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        run_stage("tiny_stage1.yaml", overrides)
    # a global batch that does not split over per-device x processes is refused
    with pytest.raises(ConfigError, match="not divisible"):
        run_stage(
            "tiny_stage1.yaml",
            {
                **overrides,
                "training.output_dir": str(tmp_path / "x"),
                "batch.global_batch_size": 3,
                "batch.per_device_train_batch_size": 2,
            },
        )


def test_train_cli_reports_config_errors(tmp_path, capsys):
    from ccexpert.cli import main

    code = main(
        [
            "train",
            "--config",
            "tiny_stage1.yaml",
            "--set",
            f"training.output_dir={tmp_path}",
            "--set",
            "data.val=null",
            "--set",
            f"data.train={tmp_path / 't.jsonl'}",
        ]
    )
    assert code == 2
    assert "overrides: data.val: required" in capsys.readouterr().err
    code = main(["train", "--config", "tiny_stage1.yaml", "--set", "optim.learning_rate"])
    assert code == 2 and "--set expects KEY=VALUE" in capsys.readouterr().err


def test_bad_training_record_fails_before_training(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", train=2, val=2, test=2)
    (data / "images" / "test" / "test_001_A.png").write_bytes(b"broken")
    overrides = {
        "model.init_from": None,
        "model.preset": "tiny",
        "data.train": str(data / "train.jsonl"),
        "data.val": str(data / "val.jsonl"),
        "data.test": str(data / "test.jsonl"),
        "training.output_dir": str(tmp_path / "out"),
        "training.deepspeed": None,
        "training.report_to": [],
    }
    from ccexpert_training.records import RecordError

    with pytest.raises(RecordError, match="record 'test_001'.*before image: cannot read"):
        run_stage("tiny_stage1.yaml", overrides)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("checkpoint-*"))


@pytest.mark.parametrize("preset", ["0.5b", "7b"])
def test_full_size_parameter_names_all_map_to_parts(preset):
    """The real architectures (built on the meta device, nothing allocated) have no parameter outside train.PARTS,
    and the stage-2 vision group is exactly the SigLIP tower minus its unused post-layernorm."""
    from ccexpert.presets import build_model

    model = build_model(preset, device="meta")
    parts = {train.part_of(name) for name, _ in model.named_parameters()}
    assert parts == {None, "vision_tower", "dim", "projector", "language_model"}
    apply_trainable(model, ["dim", "projector"])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    projector = sum(p.numel() for p in model.model.multi_modal_projector.parameters())
    assert projector == {"0.5b": 1_836_800, "7b": 16_980_992}[preset]  # ccexpert_model.md §2.8
    assert trainable == projector + sum(p.numel() for p in model.model.dim.parameters())


def test_change_mask_loss_trains_the_head_from_record_masks(tmp_path):
    """model.change_mask_loss_weight > 0: the dataset loads the records' masks, the collator turns them into
    per-token fractions, the head trains and is saved; without masks in the data the stage refuses to start."""
    data = write_tiny_dataset(tmp_path / "data", train=4, val=2, test=2, masks=True)
    overrides = {
        "model.init_from": None,
        "model.preset": "tiny",
        "model.change_mask_loss_weight": 1.0,
        "data.train": str(data / "train.jsonl"),
        "data.val": str(data / "val.jsonl"),
        "training.output_dir": str(tmp_path / "s1"),
        "training.deepspeed": None,
        "training.max_steps": 2,
        "training.eval_steps": 2,
        "training.report_to": [],
        "training.dataloader_num_workers": 0,
        "training.gradient_checkpointing": False,
        "training.eval_max_new_tokens": 2,
        "batch.global_batch_size": 2,
        "batch.per_device_train_batch_size": 2,
        "optim.learning_rate": 1e-2,
    }
    best = run_stage("tiny_stage1.yaml", overrides)
    saved = load_file(best / "model.safetensors")
    assert json.loads((best / "config.json").read_text())["change_mask_loss_weight"] == 1.0
    from ccexpert.presets import build_model, build_tiny_tokenizer

    init = build_model("tiny", build_tiny_tokenizer(), seed=0, change_mask_loss_weight=1.0)
    assert not torch.equal(saved["change_mask_head.weight"], init.change_mask_head.weight)  # trained in stage 1
    assert torch.equal(
        saved["model.vision_tower.embeddings.patch_embedding.weight"],
        init.model.vision_tower.embeddings.patch_embedding.weight,
    )  # frozen in stage 1

    plain = write_tiny_dataset(tmp_path / "plain", train=2, val=2, test=2)
    with pytest.raises(ConfigError, match="change_mask_loss_weight > 0 needs change masks"):
        run_stage(
            "tiny_stage1.yaml",
            {**overrides, "data.train": str(plain / "train.jsonl"), "training.output_dir": str(tmp_path / "s2")},
        )
    with pytest.raises(
        ConfigError, match="overrides: model.change_mask_loss_weight: expected a number >= 0 or null, got 'yes'"
    ):
        load_stage_config("stage1.yaml", {**_dummy_paths(), "model.change_mask_loss_weight": "yes"})


@pytest.mark.parametrize("name", sorted(p.name for p in train.CONFIG_DIR.glob("*.yaml")))
def test_every_shipped_stage_config_validates(name, monkeypatch, tmp_path):
    for var in (
        "CCEXPERT_BASE_MODEL",
        "CCEXPERT_DATA",
        "CCEXPERT_WORK",
        "CCEXPERT_TINY_DATA",
        "CCEXPERT_DEMO_DATA",
        "CCEXPERT_DEMO_TEST",
        "CCEXPERT_DEMO_WORK",
    ):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    config = load_stage_config(name)
    assert config.training.output_dir and config.data.val
    assert set(config.trainable) <= set(train.PARTS) and "change_mask_head" not in config.trainable


def test_init_from_a_hub_id_missing_offline_is_a_config_error(monkeypatch):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match="model.init_from: hub model acme/absent is not in the local Hugging Face"):
        train.load_model_and_processor(ModelSection(init_from="acme/absent", preset=None, use_dim=True))
