"""The real DeepSpeed path on CPU: tiny preset, ZeRO-2, TWO processes (torchrun, gloo), stages I -> II -> III chained
through their best checkpoints, per-group learning rates as DeepSpeed's optimizer holds and applies them, loss going
down, checkpoints saved, resumed and evaluated."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from ccexpert_training.train import launch_stage

sys.path.insert(0, str(Path(__file__).parent))
from _tinydata import write_tiny_dataset

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="in-training evaluation scores METEOR with Java"),
]
ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _history(stage_dir: Path) -> list[dict]:
    checkpoints = sorted(stage_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return json.loads((checkpoints[-1] / "trainer_state.json").read_text())["log_history"]


def _losses(stage_dir: Path) -> list[float]:
    return [entry["loss"] for entry in _history(stage_dir) if "loss" in entry]


@torch.no_grad()
def _fixed_set_loss(model_dir: Path | None, data: Path) -> float:
    """Teacher-forced loss on the training pairs (first caption each), for a checkpoint or the tiny preset at init."""
    from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration
    from ccexpert.presets import build_model, build_tiny_tokenizer
    from ccexpert.processing_ccexpert import CCExpertProcessor
    from ccexpert_training.records import read_records

    if model_dir is None:
        tokenizer = build_tiny_tokenizer()
        model, processor = build_model("tiny", tokenizer, seed=0), CCExpertProcessor(tokenizer)
    else:
        model = CCExpertForConditionalGeneration.from_pretrained(model_dir).eval()
        processor = CCExpertProcessor.from_pretrained(model_dir)
    records = read_records(data / "train.jsonl")
    batch = processor(
        [r.load_images() for r in records], captions=[r.captions[0] for r in records], padding_side="right"
    )
    return model(**batch).loss.item()


@pytest.fixture(scope="module")
def stages(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("ds")
    data = write_tiny_dataset(root / "data")
    monkeypatch_module.setenv("CCEXPERT_TINY_DATA", str(data))
    monkeypatch_module.setenv("CCEXPERT_WORK", str(root / "work"))
    best1 = launch_stage("tiny_stage1.yaml", {}, nproc=2, env=ENV, timeout=600)
    # stage II without warm-up so the FIRST optimizer step moves every weight by ~ its group's lr (AdamW step 1)
    best2 = launch_stage("tiny_stage2.yaml", {"optim.warmup_ratio": 0.0}, nproc=2, env=ENV, timeout=600)
    # stage III: 2 steps, then resumed from its checkpoint for 2 more, then the single test evaluation
    launch_stage("tiny_stage3.yaml", {"training.max_steps": 2}, nproc=2, env=ENV, timeout=600)
    best3 = launch_stage("tiny_stage3.yaml", {"training.resume_from_checkpoint": True}, nproc=2, env=ENV, timeout=600)
    return {"root": root, "data": data, "work": root / "work", "best": (best1, best2, best3)}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_stages_chain_from_best_checkpoints(stages):
    work = stages["work"]
    for name, best in zip(("tiny_stage1", "tiny_stage2", "tiny_stage3"), stages["best"], strict=True):
        pointer = json.loads((work / name / "best_checkpoint.json").read_text())
        assert best == work / name / "best" and (best / "model.safetensors").is_file()
        assert (work / name / pointer["checkpoint"] / "model.safetensors").is_file()
        assert pointer["selected_on"].endswith("val.jsonl")
    s2 = json.loads((work / "tiny_stage2" / "stage_config.json").read_text())
    s3 = json.loads((work / "tiny_stage3" / "stage_config.json").read_text())
    assert s2["model"]["init_from"] == str(work / "tiny_stage1")  # resolved to tiny_stage1/best at load time
    assert s3["model"]["init_from"] == str(work / "tiny_stage2")


def test_two_processes_zero2_and_global_batch(stages):
    args = torch.load(stages["work"] / "tiny_stage1" / "checkpoint-4" / "training_args.bin", weights_only=False)
    assert args.world_size == 2
    ds = args.hf_deepspeed_config.config
    assert ds["zero_optimization"]["stage"] == 2 and "optimizer" not in ds
    assert ds["train_batch_size"] == 4 == ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"] * 2
    checkpoint = stages["work"] / "tiny_stage1" / "checkpoint-4"
    assert (checkpoint / "global_step4").is_dir()  # DeepSpeed's own (optimizer-partition) checkpoint
    assert len(list((checkpoint / "global_step4").glob("*optim_states.pt"))) == 2  # one ZeRO partition per rank


def test_per_group_learning_rates_as_deepspeed_applies_them(stages):
    report = json.loads((stages["work"] / "tiny_stage2" / "optimizer_groups.json").read_text())
    assert report["source"] == "deepspeed" and report["optimizer"] == "DeepSpeedZeroOptimizer"
    assert report["wrapped_optimizer"] == "AdamW"
    groups = {g["name"]: g for g in report["groups"]}
    assert set(groups) == {"dim+language_model+projector", "vision_tower@x0.2"}
    base, vision = groups["dim+language_model+projector"], groups["vision_tower@x0.2"]
    assert base["initial_lr"] == pytest.approx(2e-3) and vision["initial_lr"] == pytest.approx(4e-4)
    assert vision["lr"] == pytest.approx(0.2 * base["lr"])  # the scheduler keeps the ratio
    assert all(n.startswith("model.vision_tower.") for n in vision["param_names"])
    assert not any(n.startswith("model.vision_tower.") for n in base["param_names"])
    assert any(n.startswith("lm_head.") for n in base["param_names"])
    # AdamW's first step moves each weight by ~lr * g / |g|: the measured update sizes follow the group lrs
    updates = report["median_abs_update_step1"]
    assert updates["vision_tower"] == pytest.approx(4e-4, rel=0.15)
    for part in ("dim", "projector", "language_model"):
        assert updates[part] == pytest.approx(2e-3, rel=0.15), part
    stage1 = json.loads((stages["work"] / "tiny_stage1" / "optimizer_groups.json").read_text())
    assert [g["name"] for g in stage1["groups"]] == ["dim+projector"]


def test_loss_goes_down_in_every_stage(stages):
    data = stages["data"]
    previous = _fixed_set_loss(None, data)
    for name in ("tiny_stage1", "tiny_stage2", "tiny_stage3"):
        losses = _losses(stages["work"] / name)
        assert len(losses) >= 2
        last = _fixed_set_loss(stages["work"] / name / "best", data)
        assert last < previous, (name, previous, last)
        previous = last
    stage2 = _losses(stages["work"] / "tiny_stage2")
    assert stage2[-1] < stage2[0]


def test_resumed_and_evaluated(stages):
    stage3 = stages["work"] / "tiny_stage3"
    history = _history(stage3)
    steps = [entry["step"] for entry in history if "loss" in entry]
    assert steps == [1, 2, 3, 4]  # steps 1-2 from the first run, 3-4 after resuming from checkpoint-2
    evals = [entry["step"] for entry in history if "eval_Sm" in entry]
    assert evals == [2, 4]
    state = json.loads((stage3 / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    metrics = json.loads((stage3 / "test_metrics.json").read_text())
    assert metrics["overall"]["n"] == 4 and set(metrics["overall"]) >= {"S*m", "BLEU-4", "change_accuracy"}
    assert metrics["checkpoint"] == str(stage3 / "best")
    predictions = (stage3 / "test_predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 4 and all({"uid", "pred", "change_caption"} <= set(json.loads(p)) for p in predictions)
    assert list((stage3 / "runs").rglob("events.out.tfevents.*"))  # TensorBoard logs


def test_zero3_config_runs_with_the_same_learning_rate_groups(stages):
    """ds_zero3.json (for 7B): stage II from stage I's best, 2 steps, two processes."""
    out = stages["work"] / "tiny_stage2_zero3"
    best = launch_stage(
        "tiny_stage2.yaml",
        {"training.deepspeed": "ds_zero3.json", "training.output_dir": str(out), "training.max_steps": 2},
        nproc=2,
        env=ENV,
        timeout=600,
    )
    report = json.loads((out / "optimizer_groups.json").read_text())
    assert report["optimizer"] == "DeepSpeedZeroOptimizer_Stage3"
    lrs = {g["name"]: g["initial_lr"] for g in report["groups"]}
    assert lrs == {"dim+language_model+projector": pytest.approx(2e-3), "vision_tower@x0.2": pytest.approx(4e-4)}
    # the exported best checkpoint holds the full (gathered) weights, loadable without DeepSpeed
    from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration

    model = CCExpertForConditionalGeneration.from_pretrained(best)
    reference = CCExpertForConditionalGeneration.from_pretrained(stages["best"][0])
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
