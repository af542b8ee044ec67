"""The settings dialog's "Test connection" text: a readable summary of /v1/info, with the demo model flagged."""

from __future__ import annotations

from ccexpert_changes.core.backend_info import DEMO_WARNING, GENERAL_NOTE, backend_summary

INFO = {
    "api_version": "1",
    "model_name": "ccexpert-demo-synthetic",
    "model_version": "synthetic-seed0-20261122",
    "chip_size": 384,
    "bands": 3,
    "max_batch": 16,
    "max_body_bytes": 67108864,
    "device": "cpu",
    "dtype": "float32",
    "demo": True,
    "family": "ccexpert",
    "change_expert": True,
}


def test_demo_backend_is_summarised_with_its_warning():
    lines = backend_summary(INFO, "http://127.0.0.1:8000")
    assert lines == [
        "Connected to http://127.0.0.1:8000.",
        "Model: ccexpert-demo-synthetic (synthetic-seed0-20261122)",
        f"Warning: {DEMO_WARNING}.",
        "Chips: 384 x 384 px, up to 16 chip pairs per request.",
        "Runs on: cpu (float32).",
    ]
    assert not any("{" in line for line in lines)  # no raw JSON


def test_general_vlm_and_an_older_backend():
    general = {
        **INFO,
        "model_name": "Qwen2.5-VL-7B-Instruct",
        "demo": False,
        "family": "qwen2_5_vl",
        "change_expert": False,
        "device": "cuda:0",
        "dtype": "bfloat16",
    }
    lines = backend_summary(general, "https://gpu.example")
    assert lines[1] == "Model: Qwen2.5-VL-7B-Instruct (synthetic-seed0-20261122), qwen2_5_vl"
    assert f"Note: {GENERAL_NOTE}." in lines and "Runs on: cuda:0 (bfloat16)." in lines
    old = {"model_name": "ccexpert-7b", "chip_size": 384}  # no family, device or batch: left out, not invented
    assert backend_summary(old, "u") == ["Connected to u.", "Model: ccexpert-7b", "Chips: 384 x 384 px."]
