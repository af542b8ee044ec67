"""``ccexpert inspect --preset 0.5b|7b|tiny|demo``: parameter count per component, as JSON, built on the meta device.

Components: ``vision`` (SigLIP), ``dim`` (the Difference-aware Integration Module), ``projector`` (mlp2x_gelu),
``llm`` (Qwen2 incl. embeddings and lm_head, tied weights counted once), ``unused`` (OV's image_newline, kept so OV
checkpoints load), ``total``. Nothing is allocated, so the 7B preset is counted in a second.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

COMPONENTS = {
    "model.vision_tower.": "vision",
    "model.dim.": "dim",
    "model.diff_branch.": "diff_branch",
    "model.multi_modal_projector.": "projector",
    "model.language_model.": "llm",
    "lm_head.": "llm",
    "model.image_newline": "unused",
    "change_mask_": "change_mask_heads",  # training-only auxiliary heads (change_mask_loss_weight > 0)
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="parameter count per component of a preset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--preset",
        choices=["tiny", "demo", "0.5b", "7b"],
        default="0.5b",
        help="architecture preset (demo: the shipped demo model's, see docs/DEMO_MODEL.md)",
    )
    parser.add_argument("--no-dim", action="store_true", help="the plain LLaVA-OneVision baseline")


def count_parameters(model) -> dict[str, int]:
    """{component: parameters}; shared (tied) tensors are counted once."""
    counts = dict.fromkeys(["vision", "dim", "projector", "llm", "unused"], 0)
    for name, param in model.named_parameters():  # named_parameters() yields each tensor once
        component = next(c for prefix, c in COMPONENTS.items() if name.startswith(prefix))
        counts[component] = counts.get(component, 0) + param.numel()
    counts["total"] = sum(counts.values())
    return counts


def run(args) -> int:
    from ccexpert.presets import build_model

    overrides: dict[str, Any] = {"use_dim": False} if args.no_dim else {}
    model = build_model(args.preset, device="meta", **overrides)
    print(json.dumps({"preset": args.preset, "use_dim": not args.no_dim, **count_parameters(model)}, indent=2))
    return 0
