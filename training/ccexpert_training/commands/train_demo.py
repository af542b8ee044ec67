"""``ccexpert train-demo --out backend/ccexpert/demo_model``: build the shipped demo model end to end.

Parses the options and calls :func:`ccexpert_training.demo_build.build_demo_model` (synthetic data, stages I -> II ->
III through the real pipeline, export with a model card, scores next to two baselines). The output folder defaults
to :data:`ccexpert.paths.DEMO_MODEL_DIR`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "rebuild the shipped demo model on synthetic data"


def add_parser(subparsers) -> None:
    from ccexpert.paths import DEMO_MODEL_DIR

    from ..demo_build import DEFAULT_STEPS, DEFAULT_TWO_CHANGES

    parser = subparsers.add_parser(
        "train-demo",
        help="train the shipped demo model end to end on synthetic data",
        description="Generate the synthetic benchmark, train the tiny CCExpert through stages I-III (HF Trainer + "
        "DeepSpeed on CPU), export the best checkpoint with a model card and score it on an unseen-seed test split "
        "next to the always-no-change and nearest-training-pair baselines. Under 30 minutes on 2 CPU cores.",
    )
    parser.add_argument("--out", type=Path, default=DEMO_MODEL_DIR, help=f"model folder (default {DEMO_MODEL_DIR})")
    parser.add_argument("--work", type=Path, default=Path("runs/demo"), help="data and stage outputs (runs/demo)")
    parser.add_argument(
        "--n", type=int, default=5000, help="synthetic pairs: train (80%%) and val (10%%) (default 5000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the training data")
    parser.add_argument("--test-seed", type=int, default=1000, help="seed of the test split (must differ)")
    parser.add_argument("--n-test", type=int, default=200, help="test pairs")
    parser.add_argument(
        "--steps", default=DEFAULT_STEPS, help=f"optimizer steps of stages I,II,III (default {DEFAULT_STEPS})"
    )
    parser.add_argument("--nproc", type=int, default=2, help="training processes (DeepSpeed ranks; default 2)")
    parser.add_argument(
        "--captions",
        choices=("canonical", "all"),
        default="canonical",
        help="train on the first (canonical) phrasing of each pair, or on all five (default canonical)",
    )
    parser.add_argument(
        "--two-changes",
        type=float,
        default=DEFAULT_TWO_CHANGES,
        help="share of the changed train/val pairs with two changes; the test split keeps the benchmark's 0.15 "
        f"(default {DEFAULT_TWO_CHANGES}, the benchmark's)",
    )
    parser.add_argument("--force", action="store_true", help="delete earlier stage outputs under --work")


def run(args: argparse.Namespace) -> int:
    from ..demo_build import DemoBuildError, DemoOptions, build_demo_model, parse_steps
    from ..stage.errors import ConfigError

    try:
        options = DemoOptions(
            out=args.out,
            work=args.work,
            n=args.n,
            seed=args.seed,
            test_seed=args.test_seed,
            n_test=args.n_test,
            steps=parse_steps(args.steps),
            nproc=args.nproc,
            captions=args.captions,
            two_changes=args.two_changes,
            force=args.force,
        )
        card = build_demo_model(options)
    except (DemoBuildError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"demo model -> {options.out} (training {card['wall_time_min']:.1f} min, total {card['total_minutes']:.1f} min)"
    )
    for name, values in card["eval"].items():
        print(f"  {name:22s} " + "  ".join(f"{k} {v:.2f}" for k, v in values.items()))
    return 0
