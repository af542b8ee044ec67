"""Launching a stage in N fresh processes with torchrun, and the entry point each launched process runs.

:func:`launch_stage` validates the config here, writes the resolved config to ``<output_dir>/launch_config.json`` and
starts ``python -m torch.distributed.run ... -m ccexpert_training.stage.launch --config <that file>``; every process
then runs :func:`main` (-> :func:`ccexpert_training.stage.run.run_stage`). Nothing here imports the CLI commands.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .config import load_stage_config
from .distributed import free_port
from .errors import ConfigError

LAUNCHED_MODULE = "ccexpert_training.stage.launch"


def launch_stage(
    config: str | Path | Mapping,
    overrides: Mapping | None = None,
    nproc: int = 1,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Path:
    """Run :func:`run_stage` in ``nproc`` fresh processes with torchrun (gloo on CPU) and return the best dir."""
    cfg = load_stage_config(config, overrides)  # validate here, and pass the resolved config on
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = output_dir / "launch_config.json"
    resolved.write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--nnodes",
        "1",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        LAUNCHED_MODULE,
        "--config",
        str(resolved),
    ]
    full_env = {**os.environ, **(env or {}), "CCEXPERT_LAUNCHED": "1"}
    subprocess.run(command, check=True, env=full_env, timeout=timeout)
    pointer = json.loads((output_dir / "best_checkpoint.json").read_text())
    return output_dir / pointer["best_dir"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of each launched process: ``torchrun -m ccexpert_training.stage.launch --config X``."""
    from ..mixture import MixtureError
    from ..records import RecordError
    from .run import run_stage

    parser = argparse.ArgumentParser(prog=LAUNCHED_MODULE)
    parser.add_argument("--config", required=True, help="a resolved stage config (launch_config.json)")
    # the `deepspeed` launcher appends --local_rank=N; the rank is read from the environment (LOCAL_RANK) instead
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        run_stage(args.config)
    except (ConfigError, MixtureError, RecordError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
