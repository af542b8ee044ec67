"""Training-step cost of demo-model architectures, side by side in one run (issue 27 item 8: what a larger or
sharper demo model costs on the CPU before a full ``ccexpert train-demo``).

One forward + backward + AdamW step on a batch of 8 random 256 px pairs with a two-clause caption and change masks,
one thread (as each of train-demo's two DeepSpeed ranks runs), median of 5 steps after one warm-up; printed as ms
and as a ratio to the shipped demo architecture.

    .venv/bin/python bench/bench_demo_step.py [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time

import numpy as np
import torch

CAPTION = "two buildings are built on the bareland at the top left corner and a road appears at the bottom"


def variants() -> dict[str, dict]:
    """name -> overrides of the demo architecture (vision / text sub-configs updated, not replaced)."""

    def vision(size: int, patch: int, width: int = 64) -> dict:
        return {
            "vision_config": {
                "image_size": size,
                "patch_size": patch,
                "hidden_size": width,
                "intermediate_size": 4 * width,
            },
            "image_seq_length": (size // patch) ** 2,
        }

    wide_text = {"text_config": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 3}}
    return {
        "shipped (128 px, 16 px patches)": {},
        "256 px, 32 px patches": vision(256, 32),
        "192 px, 16 px patches": vision(192, 16),
        "256 px, 16 px patches": vision(256, 16),
        "decoder 128 wide, 3 layers": wide_text,
        "256 px / 32 px, vision 96 wide, decoder 128 x 3": {**vision(256, 32, 96), **wide_text},
    }


def step_ms(overrides: dict, steps: int = 5) -> tuple[float, int]:
    from ccexpert.modeling_ccexpert import CCExpertForConditionalGeneration
    from ccexpert.presets import DEMO_ARCHITECTURE, save_tiny_model
    from ccexpert.processing_ccexpert import CCExpertProcessor

    arch = copy.deepcopy(DEMO_ARCHITECTURE)
    for key, value in overrides.items():
        arch[key] = {**arch.get(key, {}), **value} if isinstance(value, dict) else value
    rng = np.random.default_rng(0)
    pairs = [tuple(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8) for _ in range(2)) for _ in range(8)]
    masks = [(rng.random((256, 256)) < 0.05).astype(np.uint8) for _ in range(8)]
    with tempfile.TemporaryDirectory() as folder:
        save_tiny_model(folder, seed=0, **arch)
        processor = CCExpertProcessor.from_pretrained(folder)
        model = CCExpertForConditionalGeneration.from_pretrained(folder).train()
    batch = processor(pairs, captions=[CAPTION] * 8, change_masks=masks)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) * 1000, sum(p.numel() for p in model.parameters())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, overrides in variants().items():
        ms, parameters = step_ms(overrides)
        rows.append({"architecture": name, "step_ms": round(ms, 1), "parameters": parameters})
    base = rows[0]["step_ms"]
    for row in rows:
        row["ratio"] = round(row["step_ms"] / base, 2)
        millions = row["parameters"] / 1e6
        print(f"{row['architecture']:50s} {row['step_ms']:7.1f} ms/step  {row['ratio']:.2f}x  {millions:.2f} M")
    if args.json:
        print(json.dumps({"batch": 8, "threads": 1, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
