"""``ccexpert train --config STAGE.yaml [--set KEY=VALUE ...] [--resume [CHECKPOINT]] [--nproc N]``.

Under an external launcher every process runs this same command (``torchrun ... -m ccexpert.cli train ...``,
``deepspeed --module ccexpert.cli train ...``; see docs/TRAINING.md) and trains in-process. ``--nproc N`` starts N
local processes itself through torchrun (gloo on CPU, NCCL on GPU), each running the stage package's own per-rank
entry with the resolved config (:func:`ccexpert_training.stage.launch.main`), so the stage package never imports
this command.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "train a stage from a YAML config (HF Trainer + DeepSpeed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="stage YAML (a path, or a shipped name such as stage1.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.output_dir=work/s1 (repeatable)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CHECKPOINT",
        help="resume from the latest checkpoint in output_dir, or from CHECKPOINT",
    )
    parser.add_argument(
        "--nproc",
        type=int,
        default=None,
        help="launch this many local processes with torchrun (default: run in this process)",
    )
    # the `deepspeed` launcher appends --local_rank=N; the rank is read from the environment (LOCAL_RANK) instead
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help=HELP,
        description="Train one CCExpert stage. Selects the best checkpoint on the validation split, exports it to "
        "<output_dir>/best and scores it once on data.test when set.",
    )
    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..mixture import MixtureError
    from ..records import RecordError
    from ..train import ConfigError, launch_stage, parse_overrides, run_stage

    try:
        overrides = parse_overrides(args.overrides)
        if args.resume is not None:
            overrides["training.resume_from_checkpoint"] = (
                True if args.resume is True else str(Path(args.resume).resolve())
            )
        if args.nproc and "RANK" not in os.environ:
            best = launch_stage(args.config, overrides, nproc=args.nproc)
        else:
            best = run_stage(args.config, overrides)
    except (ConfigError, MixtureError, RecordError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0 and "CCEXPERT_LAUNCHED" not in os.environ:
        print(f"best checkpoint: {best}")
    return 0
