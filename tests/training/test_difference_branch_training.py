"""The difference-aware branch in a training stage: `ccexpert train` adds it to a branch-less checkpoint."""

from __future__ import annotations

import torch
from ccexpert.configuration_ccexpert import CCExpertConfig
from ccexpert.presets import build_model


def test_sft_with_the_branch_through_ccexpert_train(tmp_path, capsys, fresh_accelerate_state) -> None:
    """`ccexpert train --config tiny_stage3_diff_branch.yaml` adds the branch to a branch-less checkpoint and trains
    it (tiny preset at 56 px for speed; DeepSpeed ZeRO-2 in one CPU process)."""
    from _tinydata import write_tiny_dataset
    from ccexpert.cli import main
    from ccexpert.presets import PRESETS, build_tiny_tokenizer
    from safetensors.torch import load_file

    tokenizer = build_tiny_tokenizer()
    vision = dict(PRESETS["tiny"]["vision_config"], image_size=56)
    start = tmp_path / "stage2"
    build_model("tiny", tokenizer, vision_config=vision, image_seq_length=16).save_pretrained(start)
    tokenizer.save_pretrained(start)
    data = write_tiny_dataset(tmp_path / "data", train=4, val=2, test=2)
    out = tmp_path / "stage3"
    code = main(
        [
            "train",
            "--config",
            "tiny_stage3_diff_branch.yaml",
            "--set",
            f"model.init_from={start}",
            "--set",
            f"data.train={data / 'train.jsonl'}",
            "--set",
            f"data.val={data / 'val.jsonl'}",
            "--set",
            "data.test=null",
            "--set",
            f"training.output_dir={out}",
            "--set",
            "training.max_steps=3",
            "--set",
            "training.eval_steps=3",
            "--set",
            "training.report_to=[]",
        ]
    )
    assert code == 0, capsys.readouterr().err[-2000:]
    assert CCExpertConfig.from_pretrained(out / "best").diff_branch is True
    weights = load_file(str(out / "best" / "model.safetensors"))
    assert torch.count_nonzero(weights["model.diff_branch.gate_after"]) > 0  # the zero gates were trained
    assert not any(k.startswith("model.diff_branch") for k in load_file(str(start / "model.safetensors")))
