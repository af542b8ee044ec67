"""bench/gpu.sh --tiny runs on a CPU and writes its JSON and table (issue 29: CI runs the GPU benchmark's script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", str(REPO / "bench" / "gpu.sh"), "--tiny", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_gpu_benchmark_tiny_writes_every_figure(tmp_path):
    done = _run(tmp_path, "--batch-sizes", "1,2", "--new-tokens", "2", "--clients", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["tiny"] is True and result["device"] == "cpu" and result["new_tokens"] == 2
    (preset,) = result["presets"]
    assert preset["preset"] == "tiny" and [r["batch_size"] for r in preset["batches"]] == [1, 2]
    for row in preset["batches"]:
        assert row["pairs_per_s"] > 0 and row["pairs_per_s_without_overlap"] > 0
        assert row["prepare_ms_per_batch"] > 0 and row["generate_ms_per_batch"] > 0
        assert row["share_of_h100_ceiling"] is None and row["peak_gpu_memory_gib"] is None  # no GPU, no figure
    assert preset["http_pairs_per_s"] > 0 and preset["one_pair_per_call_pairs_per_s"] > 0
    text = (tmp_path / "gpu.txt").read_text()
    assert "TINY RUN ON CPU" in text and "HTTP service" in text


def test_gpu_benchmark_refuses_a_sweep_without_one_pair_per_call(tmp_path):
    done = _run(tmp_path, "--batch-sizes", "2,4")
    assert done.returncode == 2 and "must hold 1" in done.stderr
    assert not (tmp_path / "gpu.json").exists()
