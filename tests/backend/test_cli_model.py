"""The model commands: caption, convert, inspect, bench (run in-process through the `ccexpert` entry point)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ccexpert.cli import main
from ccexpert.presets import PRESETS, build_model, build_tiny_tokenizer
from conftest import make_pair, write_official_checkpoint
from PIL import Image


@pytest.fixture
def pngs(tmp_path):
    before, after = make_pair(1, 128)
    Image.fromarray(before).save(tmp_path / "before.png")
    Image.fromarray(after).save(tmp_path / "after.png")
    return tmp_path / "before.png", tmp_path / "after.png"


def test_caption_prints_the_engine_caption(tiny_model_dir, pngs, capsys):
    from ccexpert.engine import CaptionEngine

    assert main(["caption", str(pngs[0]), str(pngs[1]), "--model", str(tiny_model_dir), "--max-new-tokens", "6"]) == 0
    printed = capsys.readouterr().out.strip()
    engine = CaptionEngine.from_pretrained(tiny_model_dir, device="cpu")
    images = tuple(np.asarray(Image.open(p).convert("RGB")) for p in pngs)
    assert printed == engine.caption([images], max_new_tokens=6)[0].caption
    assert (
        main(["caption", str(pngs[0]), str(pngs[1]), "--model", str(tiny_model_dir), "--max-new-tokens", "3", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"caption", "confidence", "changed", "num_tokens"} and result["num_tokens"] <= 3


def test_caption_errors_are_clear(tiny_model_dir, pngs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CCEXPERT_MODEL", str(tmp_path / "no_model_here"))
    assert main(["caption", str(pngs[0]), str(pngs[1])]) == 2
    err = capsys.readouterr().err
    assert "no model at" in err and "no_model_here" in err and "pass --model" in err
    assert main(["caption", str(tmp_path / "missing.png"), str(pngs[1]), "--model", str(tiny_model_dir)]) == 2
    assert "before image" in capsys.readouterr().err
    (tmp_path / "junk.png").write_bytes(b"not a png")
    assert main(["caption", str(pngs[0]), str(tmp_path / "junk.png"), "--model", str(tiny_model_dir)]) == 2
    assert "after image" in capsys.readouterr().err
    Image.fromarray(np.zeros((8, 8), dtype=np.uint16)).save(tmp_path / "deep.png")
    assert main(["caption", str(tmp_path / "deep.png"), str(pngs[1]), "--model", str(tiny_model_dir)]) == 2
    assert "8-bit" in capsys.readouterr().err


def test_inspect_counts_per_component(capsys):
    assert main(["inspect", "--preset", "0.5b"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["dim"] == 63_765_505 and counts["projector"] == 1_836_800
    assert counts["total"] == sum(counts[k] for k in ("vision", "dim", "projector", "llm", "unused"))
    assert 390e6 < counts["vision"] < 400e6 and 480e6 < counts["llm"] < 500e6
    assert main(["inspect", "--preset", "tiny", "--no-dim"]) == 0
    tiny = json.loads(capsys.readouterr().out)
    assert tiny["dim"] == 0 and tiny["total"] < 5e6
    assert main(["inspect", "--preset", "demo"]) == 0  # the shipped demo model's architecture, a preset too
    demo = json.loads(capsys.readouterr().out)
    assert demo["change_mask_heads"] > 0
    assert demo["total"] == sum(v for k, v in demo.items() if k not in ("total", "preset", "use_dim"))
    from ccexpert.paths import DEMO_MODEL_DIR

    shipped = json.loads((DEMO_MODEL_DIR / "config.json").read_text())  # the shipped weights are that preset
    for section, key in (
        ("text_config", "hidden_size"),
        ("text_config", "num_hidden_layers"),
        ("vision_config", "hidden_size"),
        ("vision_config", "num_hidden_layers"),
    ):
        assert shipped[section][key] == PRESETS["demo"][section][key], (section, key)


def test_convert_command(tmp_path, capsys):
    tokenizer = build_tiny_tokenizer()
    model = build_model("tiny", tokenizer, seed=1)
    src = write_official_checkpoint(model, tokenizer, tmp_path / "official")
    vision = tmp_path / "vision.json"
    vision.write_text(json.dumps(PRESETS["tiny"]["vision_config"]))
    # head count is not in the weights: the reference's width // 128 unless given (the tiny DIM uses 2)
    assert (
        main(["convert", str(src), str(tmp_path / "out"), "--vision-config", str(vision), "--dim-num-heads", "2"]) == 0
    )
    assert "wrote" in capsys.readouterr().out
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_type"] == "ccexpert" and config["dim_layers"] == [1, 2, 3, 4]
    assert config["dim_num_heads"] == 2
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert main(["convert", str(tmp_path / "nowhere"), str(tmp_path / "out2")]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_bench_tiny_runs_and_reports_both_paths(capsys):
    assert main(["bench", "--preset", "tiny", "--pairs", "2", "--new-tokens", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reference_pairs_per_s"] > 0 and result["batched_pairs_per_s"] > 0
    assert result["speedup"] > 0 and result["share_of_ceiling"] is None and result["batch_size"] == 2


def test_convert_from_llava_onevision(tmp_path, capsys):
    import torch
    from ccexpert.checkpoints import load_model
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    tokenizer = build_tiny_tokenizer()
    config = build_model("tiny", tokenizer, device="meta").config
    ov_config = LlavaOnevisionConfig(
        vision_config=config.vision_config.to_dict(),
        text_config=config.text_config.to_dict(),
        image_token_index=config.image_token_index,
    )
    torch.manual_seed(0)
    LlavaOnevisionForConditionalGeneration(ov_config).save_pretrained(tmp_path / "ov")
    tokenizer.save_pretrained(tmp_path / "ov")
    assert (
        main(["convert", "--from-llava-onevision", str(tmp_path / "ov"), str(tmp_path / "cc"), "--dim-layers", "2,4"])
        == 0
    )
    model = load_model(tmp_path / "cc")
    assert model.config.dim_layers == [2, 4] and model.model.dim is not None
    assert (tmp_path / "cc" / "tokenizer.json").is_file()
